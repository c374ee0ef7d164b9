using System.Diagnostics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The capture agent of one experiment: runs the script, watches its folders, uploads every file it
/// creates or changes (once it has settled, and again after each later change), and when the script
/// ends, whatever the way, does a final full sync, seals the manifest and only then writes the final
/// status. It is the experiment record's and manifest's only writer. Sync never deletes.
/// It composes its parts: the script (<see cref="ScriptRunner"/>), the folders
/// (<see cref="FolderWatch"/>), the uploads and the manifest (<see cref="ArtifactSync"/>,
/// <see cref="ManifestJournal"/>), the metrics (<see cref="MetricsWatch"/>), its hold on the experiment
/// (<see cref="ExperimentLease"/>: claim, heartbeat, record, logs, stop requests) and a signal's stop
/// (<see cref="StopSignal"/>); what it keeps itself is the order of the run and how it ends.
/// </summary>
public sealed class CaptureAgent
{
    private readonly GridCatalog _catalog;
    private readonly string _run;
    private readonly string _experiment;
    private readonly CaptureOptions _options;
    private readonly TimeProvider _clock;
    private static readonly TimeSpan MinPassInterval = TimeSpan.FromMilliseconds(100);
    /// <summary>The stop request is read at most this often while the script runs (a pass woken sooner by a change does not read it again).</summary>
    private TimeSpan StopReadInterval => _options.RescanInterval < TimeSpan.FromSeconds(1) ? _options.RescanInterval : TimeSpan.FromSeconds(1);
    private readonly GridSyncState _sync = new();
    /// <summary>The claim, heartbeat, record, logs and stop requests of the experiment.</summary>
    private readonly ExperimentLease _lease;
    private ExperimentRecord Record => _lease.Record;
    /// <summary>Released by change notifications, so the loop rescans sooner than its interval.</summary>
    private readonly SemaphoreSlim _wake = new(0, 1);
    /// <summary>The folders: every file seen, which changed since they went up, and how changes are noticed.</summary>
    private readonly FolderWatch _watch;

    public CaptureAgent(GridCatalog catalog, string run, string experiment, CaptureOptions options)
    {
        _catalog = catalog;
        _run = GridNames.CheckRunName(run);
        _experiment = GridNames.CheckExperimentName(experiment);
        _options = options;
        // Every time the agent and its parts read or wait on is the catalog's clock.
        _clock = catalog.Clock;
        _stop = new StopSignal(_clock, options.StopBudget);
        _lease = new ExperimentLease(catalog, _run, _experiment, w => Warning?.Invoke(w));
        _watch = new FolderWatch(options.WorkingDirectory, options.ArtifactRoots, catalog.Store, options.FullRescanInterval, _clock,
            // Called by scans, which start once the constructor is done.
            w => Warning?.Invoke(w), (path, problem) => _artifacts!.ReportUnstorable(path, problem), Wake);
        _metrics = new MetricsWatch(catalog.Clock, options.HeartbeatInterval, w => Warning?.Invoke(w), OpenMetrics);
        _artifacts = new ArtifactSync(catalog, _run, _experiment, _watch, options.SettleTime, _sync, _metrics, w => Warning?.Invoke(w), TryAsync);
    }

    private readonly MetricsWatch _metrics;
    /// <summary>The upload passes, the final sync and the manifest's bookkeeping.</summary>
    private readonly ArtifactSync _artifacts;

    /// <summary>The most files <see cref="GridSyncState.Unstorable"/> names; a last line counts the rest.</summary>
    public const int MaxUnstorableListed = ArtifactSync.MaxUnstorableListed;

    /// <summary>A metrics file, read as capture reads any file (<see cref="ReadScope"/>).</summary>
    private Stream OpenMetrics(string fullPath) =>
        _watch.Scope.TryOpen(fullPath, out var skipped)?.ToStream() ?? throw new IOException($"'{fullPath}' is not read: {skipped ?? "it is gone"}.");

    /// <summary>Warnings as they happen (an unstorable name, a failed upload); the pipeline thread writes them.</summary>
    public event Action<string>? Warning;

    /// <summary>A signal's stop and the time it leaves.</summary>
    private readonly StopSignal _stop;

    /// <summary>
    /// Stops the agent because the process was sent <paramref name="signal"/> (SIGTERM, SIGINT):
    /// callable from any thread, at any time; the first signal is the one recorded. The script is sent
    /// SIGTERM and given a few seconds to exit before its process tree is killed, and the end (final
    /// sync, logs, sealed manifest, status) is done within <see cref="CaptureOptions.StopBudget"/> of
    /// this call. The experiment ends Stopped after SIGINT, or after SIGTERM when a stop was requested
    /// in the store (Stop-GridRun); after any other SIGTERM (a scheduler's time limit, scancel, a
    /// node going down) it ends Failed. The record names the signal either way.
    /// </summary>
    /// <returns>
    /// Whether the agent takes the signal on: false once its run is over (its final status written),
    /// when the signal is for the process to act on as it would without the agent.
    /// </returns>
    public bool StopBySignal(string signal)
    {
        ArgumentException.ThrowIfNullOrEmpty(signal);
        if (Volatile.Read(ref _ended)) return false;
        _stop.Take(signal);
        return true;
    }

    /// <summary>Set once <see cref="RunAsync"/> is over.</summary>
    private bool _ended;

    /// <summary>
    /// Runs the experiment to the end and returns the script's exit code as the system reports it
    /// (on Unix 128 + n when signal n ended it: 137 when it was killed; -1 when it was stopped while queued).
    /// <paramref name="stop"/> stops it as a stop request does; see also <see cref="StopBySignal"/>.
    /// </summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        try { return await RunToEndAsync(stop).ConfigureAwait(false); }
        finally { Volatile.Write(ref _ended, true); }
    }

    private async Task<int> RunToEndAsync(CancellationToken stop)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stop, _stop.Signalled);
        // A stop is seen at once, not at the next rescan.
        using var wakeOnStop = stopping.Token.Register(Wake);
        // What is there before the script starts is an artifact only once it changes.
        _watch.Start();
        var now = _catalog.Clock.GetUtcNow();
        var command = string.Join(' ', new[] { _options.FileName }.Concat(_options.Arguments.Select(Quote)));
        await _lease.ClaimAsync(_options, command, _watch.WorkingDirectory, _sync, now).ConfigureAwait(false);

        // A queued (or taken-over) experiment may have been asked to stop while it waited; one this
        // agent has just created cannot have been (Stop-GridRun asks the experiments that exist).
        if (!_lease.Created && await _lease.StopRequestedAsync().ConfigureAwait(false))
        {
            // Stopped while it waited in the queue: it never starts.
            Record.Status = GridStatus.Stopped;
            Record.Finished = Record.Heartbeat = _catalog.Clock.GetUtcNow();
            if (_options.RemoveWorkingDirectory) RemoveWorkingDirectory(); // nothing ran in it
            await _lease.WriteAsync().ConfigureAwait(false);
            return -1;
        }

        var logs = Path.Combine(Path.GetTempPath(), "grid-logs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(logs);
        using var journal = _artifacts.OpenJournal(Path.Combine(logs, "manifest"));
        await PersistAsync("The manifest's start", () => journal.StartAsync(_lease.TookOver, _artifacts.KeepEarlier, CancellationToken.None), _stop.Until(_clock.GetUtcNow() + _options.FinalSyncPatience)).ConfigureAwait(false);
        // Tags go on only once the claim holds: a refused agent tags nothing.
        if (_options.Tags.Count > 0)
            await PersistAsync("The experiment's tags", () => _catalog.Writer.AddTagsAsync(_run, _experiment, _options.Tags, CancellationToken.None), _stop.Until(_clock.GetUtcNow() + _options.FinalSyncPatience)).ConfigureAwait(false);
        using var watching = _watch.Watch();
        var stopped = false;
        var stopRequested = false;
        int exitCode;
        try
        {
            using var script = ScriptRunner.Start(_options, _watch.WorkingDirectory, _run, _experiment, logs, _clock);
            // The claim wrote the record with its heartbeat just now: the first beat is one interval later.
            var lastBeat = now;
            while (!script.HasExited)
            {
                if (stopping.IsCancellationRequested || (stopRequested = await _lease.StopRequestedAsync(StopReadInterval).ConfigureAwait(false)))
                {
                    stopped = true;
                    if (_stop.Signal is not null) await script.TerminateAsync().ConfigureAwait(false);
                    script.Kill();
                    break;
                }
                // The store being away for a while (an outage, a restart) never ends the agent: what
                // did not go now goes on a later pass. A stop cuts off what is uploading (the final sync sends it).
                await _artifacts.SyncAsync(final: false, stopping.Token).ConfigureAwait(false);
                _metrics.Refresh(Record, final: false); // published by the next heartbeat
                script.ReapEndedOrphans();
                if (_catalog.Clock.GetUtcNow() - lastBeat >= _options.HeartbeatInterval)
                {
                    lastBeat = _catalog.Clock.GetUtcNow();
                    await TryAsync("The heartbeat", () => _lease.BeatAsync(logs)).ConfigureAwait(false);
                }
                // Until the script exits, a change is noticed, or the rescan interval passes.
                await Task.WhenAny(script.WaitForExitAsync(), WokenAsync(_options.RescanInterval)).ConfigureAwait(false);
                // Let a burst of changes gather into one pass rather than a rescan per file written.
                await Task.WhenAny(script.WaitForExitAsync(), Task.Delay(MinPassInterval, _clock)).ConfigureAwait(false);
            }
            await script.WaitForExitAsync().ConfigureAwait(false);
            script.KillLeftovers();
            // A signal's stop waits for the script's output within its budget only.
            if (!await script.OutputDoneAsync(_stop.BudgetEnds).ConfigureAwait(false))
                Warning?.Invoke("The script's output may be incomplete: a process it started still holds it open.");
            exitCode = script.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Warning?.Invoke($"Could not start '{_options.FileName}': {ex.Message}");
            exitCode = 127;
        }

        // A signal that came before the script's end is what ended it (or came with its end: a
        // scheduler signals the script too). One that comes later only shortens the end.
        var signal = _stop.Signal;

        // The end, whatever it was: final full sync, sealed manifest, then the status. A store that
        // is away is waited for (up to FinalSyncPatience, or what a signal's stop budget leaves), so
        // an outage at the end loses nothing that time allows; the sealed manifest and the status are
        // written (tried once at least) even when the time ran out with files pending.
        var deadline = _stop.Until(_clock.GetUtcNow() + _options.FinalSyncPatience);
        Record.ExitCode = exitCode;
        Record.Signal = signal;
        // Syncing is written when the final sync has files to send; when every file is in the store
        // already, the final status follows at once and is the next write.
        if (_artifacts.NoticeFinal() > 0)
        {
            Record.Status = GridStatus.Syncing;
            await PersistAsync("The Syncing status", _lease.WriteAsync, deadline).ConfigureAwait(false);
        }
        // The final sync, then again while files are left, with growing pauses until the deadline (a
        // signal's budget cuts a pause short).
        await _artifacts.SyncAsync(final: true, _stop.BudgetOver).ConfigureAwait(false);
        var synced = true;
        try
        {
            await Transfer.Retry.WhileAsync(async _ =>
            {
                if (synced) { synced = false; return _sync.FilesPending; }
                await _artifacts.SyncAsync(final: true, _stop.BudgetOver).ConfigureAwait(false);
                // Still alive while it waits: the experiment never reads as Lost.
                await TryAsync("The heartbeat", () => _lease.BeatAsync(logs)).ConfigureAwait(false);
                return _sync.FilesPending;
            }, pending => pending > 0, deadline,
                (pending, pause) => Warning?.Invoke($"{pending} file(s) did not reach the store in the final sync; trying again in {pause.TotalSeconds:0.#} s."),
                _clock, _stop.BudgetOver).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.BudgetOver.IsCancellationRequested) { } // a signal's budget ran out
        if (_sync.FilesPending > 0 && _stop.BudgetEnds is not null)
            Warning?.Invoke($"{_sync.FilesPending} file(s) did not reach the store before the time a {signal ?? "signal"} leaves ran out; the sealed manifest lists what did.");
        _metrics.Refresh(Record, final: true);
        try
        {
            await PersistAsync("The script's output", () => _lease.UploadLogsAsync(logs, _stop.BudgetOver), deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.BudgetOver.IsCancellationRequested)
        {
            Warning?.Invoke("The script's output since the last heartbeat was not stored: the time a signal leaves ran out.");
        }
        await PersistAsync("The sealed manifest", () => journal.SealAsync(_artifacts.IsLatest, CancellationToken.None), deadline).ConfigureAwait(false);
        // A scheduler (or Ctrl+C) signals the script too, which may die of it before this agent's
        // handler has run: a signal that came during the end of a script that did not succeed is
        // what ended it. One that comes after a success only shortened the end.
        if (signal is null && exitCode != 0 && _stop.Signal is { } late) Record.Signal = signal = late;
        // A SIGTERM no one asked for through the store (a time limit, scancel, a node going down) is a failure; Stop-GridRun and Ctrl+C are stops.
        if (signal == "SIGTERM" && !stopRequested) stopRequested = await _lease.StopRequestedAsync().ConfigureAwait(false);
        Record.Status = signal == "SIGTERM" && !stopRequested ? GridStatus.Failed
            : stopped || signal is not null ? GridStatus.Stopped
            : exitCode == 0 ? GridStatus.Succeeded : GridStatus.Failed;
        // Every file stored: the folder goes before the final status, so an ended experiment's folder is gone.
        if (_options.RemoveWorkingDirectory)
        {
            watching.Dispose();
            if (WhyKept() is { } why) Warning?.Invoke($"Kept the working folder '{_watch.WorkingDirectory}': {why}.");
            else RemoveWorkingDirectory();
        }
        Record.Finished = _catalog.Clock.GetUtcNow();
        Record.Heartbeat = Record.Finished;
        await PersistAsync("The final status", _lease.WriteAsync, deadline).ConfigureAwait(false);
        try { Directory.Delete(logs, recursive: true); } catch (IOException) { }
        return exitCode;
    }

    /// <summary>Why the working folder must stay after the final sync (something in it is not in the store), or null.</summary>
    private string? WhyKept()
    {
        var why = new List<string>();
        if (_sync.FilesPending > 0) why.Add($"{_sync.FilesPending} file(s) did not reach the store");
        if (_sync.Unstorable.Count > 0) why.Add($"{_artifacts.UnstorableCount} file(s) could not be stored (Sync.Unstorable names them)");
        if (_watch.SkippedFolders > 0) why.Add($"{_watch.SkippedFolders} folder(s) were skipped");
        if (_artifacts.UnsentEarlierFiles() is > 0 and var earlier) why.Add($"{earlier} file(s) were there before the script started and, unchanged, are not artifacts");
        return why.Count == 0 ? null : string.Join("; ", why);
    }

    /// <summary>Removes the working folder; the record stops naming it once it is gone.</summary>
    private void RemoveWorkingDirectory()
    {
        if (WorkingFolders.Remove(_watch.WorkingDirectory) is { } problem) Warning?.Invoke($"The working folder '{_watch.WorkingDirectory}' was not removed: {problem}");
        else Record.WorkingDirectory = null;
    }

    private static bool IsPassing(GridException ex) => ExperimentLease.IsPassing(ex);

    /// <summary>Runs a write that may wait for a later pass; a store that is away only costs a warning.</summary>
    private async Task<bool> TryAsync(string what, Func<Task> work)
    {
        try
        {
            await work().ConfigureAwait(false);
            return true;
        }
        catch (GridException ex) when (IsPassing(ex))
        {
            Warning?.Invoke($"{what} did not reach the store yet; it is tried again: {ex.Message}");
            return false;
        }
    }

    /// <summary>A write that must happen: tried again with growing pauses until <paramref name="deadline"/>, then its error is thrown.</summary>
    private Task PersistAsync(string what, Func<Task> work, DateTimeOffset deadline) => PersistAsync(what, work, () => deadline);

    /// <summary>A write that must happen: tried (once at least) and again with growing pauses until <paramref name="deadline"/> (asked each time), then its error is thrown (<see cref="Transfer.Retry.UntilAsync"/>).</summary>
    private async Task PersistAsync(string what, Func<Task> work, Func<DateTimeOffset> deadline) =>
        await Transfer.Retry.UntilAsync(async _ => await work().ConfigureAwait(false), ex => ex is GridException g && IsPassing(g), deadline,
            (ex, pause) => Warning?.Invoke($"{what} did not reach the store yet; trying again in {pause.TotalSeconds:0} s: {ex.Message}"),
            _clock, CancellationToken.None).ConfigureAwait(false);

    private void Wake()
    {
        try { _wake.Release(); }
        catch (SemaphoreFullException) { } // already awake
    }

    /// <summary>Until a change is noticed (true) or <paramref name="timeout"/> passes on the agent's clock (false).</summary>
    private async Task<bool> WokenAsync(TimeSpan timeout)
    {
        using var timer = new CancellationTokenSource(timeout, _clock);
        try
        {
            await _wake.WaitAsync(timer.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static string Quote(string a) => a.Length > 0 && !a.Any(char.IsWhiteSpace) && !a.Contains('"') ? a : "\"" + a.Replace("\"", "\\\"") + "\"";
}
