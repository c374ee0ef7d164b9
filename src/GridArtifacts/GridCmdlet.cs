using System.Collections.Concurrent;
using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;

namespace GridArtifacts;

/// <summary>
/// Shared plumbing of every GridArtifacts cmdlet: one cancellation token per call (Ctrl+C cancels it),
/// work run off the pipeline thread with everything it produces drained and written on the pipeline
/// thread, and GridException mapped onto ErrorRecords.
/// </summary>
public abstract class GridCmdlet : PSCmdlet
{
    private CancellationTokenSource? _stop;

    protected CancellationToken CancelToken => (_stop ??= new CancellationTokenSource()).Token;

    protected override void BeginProcessing() => _stop ??= new CancellationTokenSource();

    protected override void StopProcessing() => _stop?.Cancel();

    protected override void EndProcessing()
    {
        _stop?.Dispose();
        _stop = null;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the thread pool. What it posts (objects, ErrorRecords,
    /// GridExceptions, verbose text) is written here, on the pipeline thread; <paramref name="progress"/>
    /// is asked for a record about four times a second. A GridException the work throws becomes a
    /// terminating error; cancellation ends quietly because PowerShell is already stopping the pipeline.
    /// When the pipeline is stopped, the cancelled work is waited for <paramref name="stopGrace"/>
    /// (10 s when null) before the command returns.
    /// </summary>
    protected void RunAndDrain(Func<Action<object>, CancellationToken, Task> work, Func<ProgressRecord?>? progress = null, TimeSpan? stopGrace = null)
    {
        using var queue = new BlockingCollection<object>(new ConcurrentQueue<object>(), 4096);
        var token = CancelToken;
        var task = Task.Run(async () =>
        {
            try { await work(queue.Add, token).ConfigureAwait(false); }
            finally { queue.CompleteAdding(); }
        }, CancellationToken.None);

        var nextProgress = DateTime.UtcNow;
        ProgressRecord? last = null;
        try
        {
            try
            {
                while (!queue.IsCompleted)
                {
                    if (queue.TryTake(out var item, 250)) Dispatch(item);
                    if (progress is not null && DateTime.UtcNow >= nextProgress)
                    {
                        last = progress();
                        if (last is not null) WriteProgress(last);
                        nextProgress = DateTime.UtcNow.AddMilliseconds(250);
                    }
                }
            }
            finally
            {
                if (last is not null)
                {
                    last.RecordType = ProgressRecordType.Completed;
                    WriteProgress(last);
                }
            }
        }
        catch (PipelineStoppedException)
        {
            // Stopping (Ctrl+C, or Select-Object -First downstream): every Write* now throws, so
            // nothing more is written, but the work is cancelled and given time to clean up (part
            // files) before the command returns. What it still posts is dropped, so it never blocks
            // on a full queue.
            _stop?.Cancel();
            var deadline = DateTime.UtcNow + (stopGrace ?? DefaultStopGrace);
            while (!task.IsCompleted && DateTime.UtcNow < deadline) queue.TryTake(out _, 50);
            throw;
        }

        try
        {
            task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (GridException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
        }
    }

    /// <summary>How long a stopped command waits for its cancelled work to clean up.</summary>
    protected static readonly TimeSpan DefaultStopGrace = TimeSpan.FromSeconds(10);

    private void Dispatch(object item)
    {
        switch (item)
        {
            case GridException ex: WriteError(ToErrorRecord(ex)); break;
            case ErrorRecord er: WriteError(er); break;
            case VerboseMessage v: WriteVerbose(v.Text); break;
            case WarningMessage w: WriteWarning(w.Text); break;
            default: WriteObject(item); break;
        }
    }

    /// <summary>
    /// The one map from an error to its ErrorRecord: the error id, the category its kind stands for,
    /// the item as target. Every ErrorRecord the module writes is made here.
    /// </summary>
    public static ErrorRecord ToErrorRecord(GridException ex)
    {
        var category = ex.Kind switch
        {
            GridErrorKind.NotFound => ErrorCategory.ObjectNotFound,
            GridErrorKind.InvalidName => ErrorCategory.InvalidArgument,
            GridErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
            GridErrorKind.DamagedRecord => ErrorCategory.InvalidData,
            GridErrorKind.UnsafePath => ErrorCategory.SecurityError,
            GridErrorKind.IntegrityFailure => ErrorCategory.InvalidResult,
            GridErrorKind.AlreadyExists => ErrorCategory.ResourceExists,
            GridErrorKind.StoreUnavailable => ErrorCategory.ConnectionError,
            GridErrorKind.AccessDenied => ErrorCategory.PermissionDenied,
            GridErrorKind.WriteFailed => ErrorCategory.WriteError,
            GridErrorKind.Busy => ErrorCategory.ResourceBusy,
            GridErrorKind.Protected => ErrorCategory.PermissionDenied,
            GridErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
            GridErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
            GridErrorKind.Failed => ErrorCategory.InvalidResult,
            _ => ErrorCategory.NotSpecified,
        };
        return new ErrorRecord(ex, ex.ErrorId, category, ex.Target);
    }

    /// <summary>
    /// ShouldProcess, for a change that asks first (ConfirmImpact High). A session that cannot ask
    /// (pwsh -NonInteractive, a host without prompts) makes PowerShell fail with its stock "Read and
    /// Prompt functionality is not available"; that becomes a terminating ConfirmationNotPossible
    /// error saying how to go on without asking. Nothing of <paramref name="target"/> has changed then.
    /// </summary>
    protected bool ShouldProcessOrExplain(string target, string action)
    {
        try
        {
            return ShouldProcess(target, action);
        }
        catch (Exception ex) when (ex is PSInvalidOperationException or System.Management.Automation.Host.HostException or NotImplementedException)
        {
            // Only the prompt throws here: ShouldProcess itself neither reads nor writes anything else.
            var command = MyInvocation.MyCommand.Name;
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidOperation, "ConfirmationNotPossible", $"{command} asks before it changes '{target}' ({action}), and this session cannot ask (pwsh -NonInteractive, or a host without prompts); nothing was changed. " +
                    $"Add -Confirm:$false to {command} to go ahead without asking, or -WhatIf to see what it would do.", target, ex)));
            return false; // not reached
        }
    }

    /// <summary>Writes a non-terminating error for one item.</summary>
    protected void WriteGridError(GridException ex) => WriteError(ToErrorRecord(ex));

    /// <summary>Refuses (terminating, InvalidStoreUri) a store location that is a mistyped URI rather than s3:// or a folder.</summary>
    protected void CheckStoreLocation(string? location)
    {
        if (location is null) return;
        try { StoreSettings.CheckLocation(location); }
        catch (GridException ex) { ThrowTerminatingError(ToErrorRecord(ex)); }
    }

    /// <summary>Qualifies a user path against the current PowerShell location (not the process directory).</summary>
    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
}

/// <summary>A cmdlet that reads or writes a store: the shared -Store parameter and how it is resolved.</summary>
public abstract class GridStoreCmdlet : GridCmdlet
{
    /// <summary>
    /// The store for this call: a folder or s3://bucket/prefix. Without it: $env:GRID_STORE, then the
    /// location saved by Set-GridStore, then ~/.grid/store. Objects on the pipeline carry their store.
    /// </summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? Store { get; set; }

    /// <summary>The resolved store of this call, folder paths qualified against the current location.</summary>
    protected GridStoreInfo ResolveStore() => ResolveStore(Store);

    /// <summary>A store named by a piped object or a parameter (null: the default), resolved as -Store is.</summary>
    protected GridStoreInfo ResolveStore(string? location)
    {
        try
        {
            var info = StoreSettings.Resolve(location);
            return info.Kind == GridStoreKind.FileSystem
                ? new GridStoreInfo(ResolvePath(info.Location), info.Kind, info.Source)
                : info;
        }
        catch (GridException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            throw; // not reached
        }
    }

    protected GridCatalog OpenCatalog() => OpenCatalog(Store);

    protected GridCatalog OpenCatalog(string? location)
    {
        var info = ResolveStore(location);
        WriteVerbose($"Store: {info.Location} (from {info.Source})");
        try
        {
            return Catalogs.Open(info.Location);
        }
        catch (GridException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            throw; // not reached
        }
    }
}
