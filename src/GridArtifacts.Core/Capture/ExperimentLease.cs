using System.Diagnostics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The agent's hold on its experiment: the claim that makes it the experiment's one writer (and the
/// run it creates with it), the heartbeat that keeps the claim (a record whose heartbeat grows old
/// reads Lost and is taken over), the record it writes (status, exit code, signal, sync figures),
/// the script's logs, and the stop requests it reads.
/// </summary>
internal sealed class ExperimentLease
{
    private readonly GridCatalog _catalog;
    private readonly string _run;
    private readonly string _experiment;
    private readonly Action<string> _warn;
    private GridSyncState? _sync;

    public ExperimentLease(GridCatalog catalog, string run, string experiment, Action<string> warn) =>
        (_catalog, _run, _experiment, _warn) = (catalog, run, experiment, warn);

    /// <summary>This agent, as its claim on the experiment names it.</summary>
    public string AgentId { get; } = WriterId.New("agent");

    /// <summary>
    /// Whether an earlier agent held the experiment (a Lost one taken over): only then can the store hold
    /// its manifest and unfinished uploads. A new or queued experiment has had no writer of its files.
    /// </summary>
    public bool TookOver { get; private set; }

    /// <summary>The experiment's record as this agent last wrote it (empty until claimed).</summary>
    public ExperimentRecord Record { get; private set; } = new();

    /// <summary>
    /// Takes the experiment (creating its run first unless it was queued) as <see cref="ExperimentClaims.ClaimExperimentAsync"/>
    /// allows, then aborts the multipart uploads an earlier agent of it left unfinished.
    /// </summary>
    public async Task ClaimAsync(CaptureOptions options, string command, string workingDirectory, GridSyncState sync, DateTimeOffset now)
    {
        _sync = sync;
        // A new run is created with this experiment; a queued experiment's run was created by whoever
        // queued it, and if it is gone the experiment was removed: nothing is created then.
        if (!options.Queued)
        {
            await _catalog.Writer.TryCreateRunAsync(new RunRecord { Name = _run, Created = now, Command = string.Join(' ', new[] { options.FileName }.Concat(options.Arguments)) }, CancellationToken.None, options.ClaimSettle).ConfigureAwait(false);
        }
        // One writer per experiment: an ended one is never rewritten, a live one never joined.
        Record = await _catalog.Claims.ClaimExperimentAsync(_run, _experiment, existing =>
        {
            TookOver = existing is not null && existing.Status != GridStatus.Queued;
            var r = existing ?? new ExperimentRecord { Run = _run, Experiment = _experiment, Created = now };
            foreach (var (k, v) in options.Parameters) r.Parameters[k] = v;
            r.Status = GridStatus.Running;
            r.Started = now;
            r.Heartbeat = now;
            r.Agent = AgentId;
            r.Signal = null; // a Lost agent's, if it was signalled in its end
            r.Command = command;
            r.Sync = sync;
            r.WorkingDirectory = workingDirectory;
            return r;
        }, takeQueued: true, mustExist: options.Queued, CancellationToken.None, options.ClaimSettle).ConfigureAwait(false);

        // Multipart uploads an earlier agent of this experiment left unfinished (it was killed) are
        // aborted now that this agent holds the experiment, so no parts are left behind.
        if (!TookOver) return;
        try
        {
            var sweep = await _catalog.Artifacts.AbortAbandonedUploadsAsync(_run, _experiment, CancellationToken.None).ConfigureAwait(false);
            if (sweep.Aborted.Count > 0) _warn($"Aborted {sweep.Aborted.Count} unfinished upload(s) left by an earlier agent of {GridNames.ExperimentId(_run, _experiment)}.");
            foreach (var e in sweep.NotAborted) _warn(e.Message);
        }
        catch (GridException ex) when (IsPassing(ex))
        {
            _warn($"Unfinished uploads of an earlier agent were not checked: {ex.Message}");
        }
    }

    /// <summary>When the stop request was last read (and found absent).</summary>
    private DateTimeOffset _stopReadAt = DateTimeOffset.MinValue;

    /// <summary>
    /// Whether a stop was asked for in the store (Stop-GridRun); a store that is away answers no, and is
    /// asked again on the next pass. Within <paramref name="fresh"/> of the last read it is not read
    /// again: a pass that comes sooner (a change was noticed) takes the last answer.
    /// </summary>
    public async Task<bool> StopRequestedAsync(TimeSpan fresh = default)
    {
        var now = _catalog.Clock.GetUtcNow();
        if (now - _stopReadAt < fresh) return false;
        try
        {
            var requested = await _catalog.Runs.StopRequestedAsync(_run, _experiment, CancellationToken.None).ConfigureAwait(false);
            _stopReadAt = now;
            return requested;
        }
        catch (GridException ex) when (IsPassing(ex))
        {
            return false;
        }
    }

    /// <summary>The heartbeat: the record with the time and the agent's memory, then the script's output so far.</summary>
    public async Task BeatAsync(string logs)
    {
        Record.Heartbeat = _catalog.Clock.GetUtcNow();
        if (_sync is not null) _sync.AgentMemory = Process.GetCurrentProcess().WorkingSet64;
        await WriteAsync().ConfigureAwait(false);
        await UploadLogsAsync(logs, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The size each log had when it last went to the store (the runner only appends to them).</summary>
    private readonly Dictionary<string, long> _logsSent = new(StringComparer.Ordinal);

    /// <summary>The script's output (stdout, stderr) from the folder the runner writes it to; a log that has not grown since it last went up is not sent again.</summary>
    public async Task UploadLogsAsync(string logs, CancellationToken ct)
    {
        foreach (var stream in new[] { "stdout", "stderr" })
        {
            var file = new FileInfo(Path.Combine(logs, stream + ".log"));
            if (!file.Exists) continue;
            var length = file.Length;
            if (_logsSent.TryGetValue(stream, out var sent) && sent == length) continue;
            await _catalog.Writer.WriteLogFileAsync(_run, _experiment, stream, file.FullName, ct).ConfigureAwait(false);
            _logsSent[stream] = length;
        }
    }

    /// <summary>Writes the record as it is now.</summary>
    public Task WriteAsync() => _catalog.Writer.WriteExperimentRecordAsync(Record, CancellationToken.None);

    /// <summary>Failures that pass: the store is away for now (outage, busy, disk full), not a wrong name or a refusal.</summary>
    public static bool IsPassing(GridException ex) => ex.IsTransient || ex.Kind is GridErrorKind.StoreUnavailable or GridErrorKind.WriteFailed;
}
