using System.Diagnostics;
using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;

namespace GridArtifacts.Commands;

/// <summary>
/// Downloads artifacts to <c>&lt;Destination&gt;/&lt;run&gt;/&lt;exp&gt;/&lt;path&gt;</c>, verified against their
/// SHA-256. Identical files already there are skipped; -Force downloads them again.
/// </summary>
[Cmdlet(VerbsData.Save, "GridArtifact", SupportsShouldProcess = true, DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(GridSaveResult))]
public sealed class SaveGridArtifactCommand : GridStoreCmdlet
{
    private const string NameSet = "Name";
    private const string InputObjectSet = "InputObject";

    /// <summary>Artifacts from Get-GridArtifact.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputObjectSet)]
    public GridArtifact[] InputObject { get; set; } = Array.Empty<GridArtifact>();

    /// <summary>Run names or experiment ids (<c>run-expN</c>); wildcards are supported.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Run { get; set; } = Array.Empty<string>();

    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = NameSet)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Experiment { get; set; }

    [Parameter(ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    [Parameter(ParameterSetName = NameSet)]
    [SupportsWildcards]
    public string[]? Exclude { get; set; }

    [Parameter(ParameterSetName = NameSet)]
    [Alias("MatchRegex")]
    public string? Match { get; set; }

    /// <summary>The folder to save into, relative to the current location; ./grid_artifacts by default.</summary>
    [Parameter(Position = 1)]
    [Alias("DownloadDir")]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "grid_artifacts";

    /// <summary>Downloads even files that are already there and identical.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Emits one result per artifact: downloaded, overwritten or skipped.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>
    /// How many artifacts this call moves at once. 32, as many as the process's requests in flight:
    /// measured best of 8, 16 and 32 for small files (docs/transfer-engine.md).
    /// </summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = TransferOptions.DefaultFilesInFlight;

    private readonly List<GridArtifact> _artifacts = new();
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    protected override void ProcessRecord()
    {
        if (ParameterSetName == InputObjectSet)
        {
            foreach (var a in InputObject) Add(a);
            return;
        }
        ArtifactQuery.CheckRegex(this, Match);
        var query = new ArtifactQuery(Run, Experiment, Path, Exclude, Match);
        var catalog = OpenCatalog();
        var found = new List<GridArtifact>();
        RunAndDrain(async (post, ct) => found.AddRange(await query.ListAsync(catalog, post, ct).ConfigureAwait(false)));
        foreach (var a in found) Add(a);
    }

    private void Add(GridArtifact a)
    {
        if (_seen.Add($"{a.Store}\n{a.Run}\n{a.Experiment}\n{a.Path}")) _artifacts.Add(a);
    }

    protected override void EndProcessing()
    {
        var root = ResolvePath(Destination);
        var items = new List<SaveItem>(_artifacts.Count);
        foreach (var a in _artifacts)
        {
            try
            {
                items.Add(new SaveItem(a, GridNames.LocalPathFor(root, a.Run, a.Experiment, a.Path)) { Root = root });
            }
            catch (GridException ex)
            {
                WriteGridError(ex);
            }
        }
        items = WithoutPathConflicts(items, root);
        if (items.Count == 0)
        {
            base.EndProcessing();
            return;
        }
        var bytes = items.Sum(i => i.Artifact.Size);
        if (MyInvocation.BoundParameters.ContainsKey("WhatIf"))
        {
            // Say what would move, without moving it: files and bytes to fetch, files already up to date.
            var plan = TransferEngine.PlanAsync(items, Force, CancelToken).GetAwaiter().GetResult();
            ShouldProcess(root, $"Save {plan.Fetch} artifact(s), {SizeText.Format(plan.FetchBytes)} to fetch; {plan.UpToDate} already up to date");
            base.EndProcessing();
            return;
        }
        if (!ShouldProcess(root, $"Save {items.Count} artifact(s), {SizeText.Format(bytes)}"))
        {
            base.EndProcessing();
            return;
        }

        CheckDestination(root, items);

        var progress = new TransferProgress(items.Count, bytes);
        var clock = Stopwatch.StartNew();
        RunAndDrain(
            async (post, ct) =>
            {
                // A destination that fills up (or turns read-only) fails every file after it the same way:
                // the first such error stops the call, instead of one error per file still to come.
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                GridException? fatal = null;
                var saved = 0;
                try
                {
                    await TransferEngine.Shared.DownloadAsync(items, Catalogs.Open, Force, ThrottleLimit, progress,
                        r =>
                        {
                            if (r.Action != GridSaveAction.Skipped) Interlocked.Increment(ref saved);
                            if (PassThru) post(r);
                        },
                        e =>
                        {
                            if (!IsDestinationWide(e)) post(e);
                            else if (Interlocked.CompareExchange(ref fatal, e, null) is null) stop.Cancel();
                        },
                        stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (fatal is not null && !ct.IsCancellationRequested)
                {
                    // Stopped here, for the error below; the files in flight removed their part files.
                }
                if (fatal is not null)
                {
                    var cause = fatal.ErrorId == "DestinationDiskFull" ? "the disk is full" : fatal.InnerException?.Message ?? fatal.Message;
                    var file = (fatal.Target as GridArtifact)?.Path;
                    throw new GridException(GridErrorKind.WriteFailed, fatal.ErrorId == "DestinationDiskFull" ? "DestinationDiskFull" : "DestinationNotWritable",
                        $"Saving to '{root}' stopped: {cause}{(file is null ? "" : $" ('{file}' was not written)")}. {saved} file(s) were saved whole before that; the rest were not started. " +
                        "Free space (or give another -Destination) and run the command again: files already saved are skipped.", root, fatal);
                }
            },
            () => ProgressFor(progress, clock.Elapsed));
        var saved = progress.FilesDone - progress.Skipped - progress.Failed;
        var summary = $"Saved {saved}, skipped {progress.Skipped} (already up to date), failed {progress.Failed} of {items.Count} artifact(s); " +
                      $"{SizeText.Format(bytes)} in {clock.Elapsed.TotalSeconds:F1} s to '{root}'.";
        WriteVerbose(summary);
        WriteInformation(new InformationRecord(summary, "Save-GridArtifact") { Tags = { "Summary" } });
        base.EndProcessing();
    }

    /// <summary>A write error that every other file of the call would meet too: a full or read-only file system.</summary>
    private static bool IsDestinationWide(GridException e) =>
        e.ErrorId == "DestinationDiskFull" || (e.InnerException is IOException io && (IsDiskFull(io) || io.HResult == ReadOnlyFileSystem));

    private const int ReadOnlyFileSystem = 30; // EROFS

    private static bool IsDiskFull(IOException ex) =>
        ex.HResult == 28 /* ENOSPC */ || ex.HResult == unchecked((int)0x80070070) || ex.HResult == unchecked((int)0x80070027);

    /// <summary>
    /// Refuses, with one terminating error before anything moves, a destination that no file of the
    /// call could be saved to: a file where the folder should be (or on its way), a folder that cannot
    /// be made or written (one byte is written and removed), or too little free space for the bytes
    /// still to fetch (files already there at their size are not counted). Folders made for the
    /// check are removed again when it fails.
    /// </summary>
    private void CheckDestination(string root, List<SaveItem> items)
    {
        var full = System.IO.Path.GetFullPath(root);
        var made = new List<string>();
        for (var p = full; p is not null && !Directory.Exists(p); p = System.IO.Path.GetDirectoryName(p))
        {
            if (File.Exists(p))
            {
                Refuse(new GridException(GridErrorKind.WriteFailed, "DestinationNotFolder",
                    $"Nothing was saved: '{root}' cannot be saved into, because '{p}' is a file, not a folder. Give -Destination a folder (it is made when missing).", root));
            }
            made.Add(p);
        }
        try
        {
            Directory.CreateDirectory(full);
            var probe = System.IO.Path.Combine(full, ".grid-probe-" + Guid.NewGuid().ToString("N"));
            using var file = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            file.WriteByte(0);
            file.Flush(flushToDisk: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var diskFull = ex is IOException io && IsDiskFull(io);
            Remove(made);
            Refuse(new GridException(ex is UnauthorizedAccessException ? GridErrorKind.AccessDenied : GridErrorKind.WriteFailed,
                diskFull ? "DestinationDiskFull" : "DestinationNotWritable",
                $"Nothing was saved: '{root}' cannot be written ({ex.Message}). Free space or make it writable, or give another -Destination.", root, ex));
        }

        var fetch = items.Where(i => !(new FileInfo(i.LocalPath) is { Exists: true } f && f.Length == i.Artifact.Size)).ToList();
        var need = fetch.Sum(i => i.Artifact.Size);
        long free;
        try
        {
            var drive = new DriveInfo(full);
            // A file system that reports no size at all (some network and virtual ones) is not judged by it.
            if (drive.TotalSize <= 0) return;
            free = drive.AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return;
        }
        if (need <= free) return;
        Remove(made);
        Refuse(new GridException(GridErrorKind.WriteFailed, "DestinationDiskFull",
            $"Nothing was saved: '{root}' has {SizeText.Format(free)} free, and the {fetch.Count} artifact(s) to fetch need {SizeText.Format(need)}. " +
            "Free space, or save fewer (-Path, -Exclude), or give another -Destination.", root));

        void Refuse(GridException ex) => ThrowTerminatingError(ToErrorRecord(ex));

        static void Remove(List<string> folders)
        {
            foreach (var f in folders) // deepest first
            {
                try { Directory.Delete(f, recursive: false); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; }
            }
        }
    }

    /// <summary>
    /// A bucket can hold keys 'a' and 'a/b' in one experiment; a disk cannot hold a file and a folder
    /// of one name. The folder wins: its files are saved, and the file of the same name is refused
    /// with a PathConflict error (before anything moves, so the outcome does not depend on order).
    /// </summary>
    private List<SaveItem> WithoutPathConflicts(List<SaveItem> items, string root)
    {
        var comparer = OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase;
        var folders = new HashSet<string>(comparer);
        var fullRoot = System.IO.Path.GetFullPath(root);
        foreach (var item in items)
        {
            for (var d = System.IO.Path.GetDirectoryName(item.LocalPath); d is not null && d.Length > fullRoot.Length && folders.Add(d); d = System.IO.Path.GetDirectoryName(d)) { }
        }
        var kept = new List<SaveItem>(items.Count);
        foreach (var item in items)
        {
            if (!folders.Contains(item.LocalPath)) { kept.Add(item); continue; }
            var a = item.Artifact;
            WriteGridError(new GridException(GridErrorKind.AlreadyExists, "PathConflict",
                $"'{a}' was not saved: {GridNames.ExperimentId(a.Run, a.Experiment)} also has artifacts under '{a.Path}/', and a disk cannot hold a file and a folder of one name at '{item.LocalPath}'. " +
                $"The artifacts under '{a.Path}/' are saved; to get this one, save it alone to another -Destination.", a));
        }
        return kept;
    }

    private static ProgressRecord ProgressFor(TransferProgress p, TimeSpan elapsed)
    {
        var done = p.BytesDone;
        var rate = elapsed.TotalSeconds > 0 ? done / elapsed.TotalSeconds : 0;
        var record = new ProgressRecord(1, "Saving artifacts",
            $"{p.FilesDone} of {p.FilesTotal} files, {SizeText.Format(done)} of {SizeText.Format(p.BytesTotal)} at {SizeText.Format((long)rate)}/s")
        {
            PercentComplete = p.BytesTotal > 0 ? (int)Math.Min(100, done * 100 / p.BytesTotal) : (int)(p.FilesDone * 100 / Math.Max(1, p.FilesTotal)),
        };
        if (rate > 0 && p.BytesTotal > done) record.SecondsRemaining = (int)Math.Min(int.MaxValue, (p.BytesTotal - done) / rate);
        return record;
    }
}
