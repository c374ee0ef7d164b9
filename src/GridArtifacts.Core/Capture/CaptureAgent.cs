using System.Diagnostics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>What the agent runs and watches.</summary>
public sealed record CaptureOptions
{
    public required string FileName { get; init; }
    public IReadOnlyList<string> Arguments { get; init; } = Array.Empty<string>();
    /// <summary>The experiment's own working folder; every file created or changed under it is an artifact.</summary>
    public required string WorkingDirectory { get; init; }
    /// <summary>More folders whose new or changed files are artifacts, stored under their folder's name.</summary>
    public IReadOnlyList<string> ArtifactRoots { get; init; } = Array.Empty<string>();
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    /// <summary>Tags put on the experiment once this agent holds it (checked with <see cref="GridNames.CheckTags"/>).</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    /// <summary>A file is uploaded once it has not changed for this long.</summary>
    public TimeSpan SettleTime { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// A pass this often (sooner when a change is noticed): it looks at the paths the change
    /// notifications named and the files not yet settled, not at every file.
    /// </summary>
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// A full rescan of every folder at least this far apart (and never more than a twentieth of the
    /// time, however long one takes), for changes no notification told of (a full notification queue,
    /// a network folder written from another machine). Every pass is a full one where notifications
    /// cannot be had, and the final sync always is.
    /// </summary>
    public TimeSpan FullRescanInterval { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// How long the agent waits after claiming the experiment before it reads the claim back: two
    /// agents that start at the same moment both write a claim, and only the one whose claim is
    /// still there afterwards goes on.
    /// </summary>
    public TimeSpan ClaimSettle { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// The experiment was queued (by Start-GridRun, or a scheduler's submit): it runs only if its
    /// record is still there, so one removed meanwhile is not created again, nor its run.
    /// </summary>
    public bool Queued { get; init; }
    /// <summary>How long the final sync keeps trying files and records the store would not take (an outage at the end).</summary>
    public TimeSpan FinalSyncPatience { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>
    /// Once the agent is stopped by a signal (<see cref="CaptureAgent.StopBySignal"/>), the time from
    /// the signal by which the end is done: the script's own exit, the final sync, the logs, the
    /// sealed manifest and the final status (what is still pending then is left out, and counted).
    /// Null: only <see cref="FinalSyncPatience"/> bounds it. See <see cref="StopBudgetFor"/>.
    /// </summary>
    public TimeSpan? StopBudget { get; init; }
    /// <summary>
    /// Removes the working folder at the end when the final sync stored every file in it (the folders
    /// Start-GridRun makes); it is kept, with a warning that says where and why, when anything in it
    /// did not reach the store. The record names the folder until it is removed.
    /// </summary>
    public bool RemoveWorkingDirectory { get; init; }

    /// <summary>The environment variable with the seconds between a scheduler's SIGTERM and its SIGKILL (Slurm's KillWait).</summary>
    public const string SignalGraceVariable = "GRID_SIGNAL_GRACE";
    /// <summary>The grace when none is given: Kubernetes' default terminationGracePeriodSeconds and ECS's stop timeout.</summary>
    public static readonly TimeSpan DefaultSignalGrace = TimeSpan.FromSeconds(30);
    /// <summary>What the agent keeps back from the grace: pwsh's own exit and the last record's write.</summary>
    public static readonly TimeSpan SignalGraceReserve = TimeSpan.FromSeconds(3);
    /// <summary>The shortest stop budget, however short the grace.</summary>
    public static readonly TimeSpan MinStopBudget = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The stop budget for a grace of <paramref name="grace"/> seconds (the value of
    /// <see cref="SignalGraceVariable"/>): the grace less <see cref="SignalGraceReserve"/>, never under
    /// <see cref="MinStopBudget"/>. Unset or empty: <see cref="DefaultSignalGrace"/>; a value that is
    /// not a number of seconds (0 or more) is that default too, and <paramref name="problem"/> says why.
    /// </summary>
    public static TimeSpan StopBudgetFor(string? grace, out string? problem)
    {
        problem = null;
        var seconds = DefaultSignalGrace.TotalSeconds;
        if (!string.IsNullOrWhiteSpace(grace))
        {
            if (double.TryParse(grace.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var given)
                && double.IsFinite(given) && given >= 0)
            {
                seconds = Math.Min(given, TimeSpan.FromDays(1).TotalSeconds);
            }
            else
            {
                problem = $"{SignalGraceVariable}='{grace}' is not a number of seconds; the agent takes {DefaultSignalGrace.TotalSeconds:0} s between a SIGTERM and the SIGKILL that follows it.";
            }
        }
        return TimeSpan.FromSeconds(Math.Max(MinStopBudget.TotalSeconds, seconds - SignalGraceReserve.TotalSeconds));
    }
}

/// <summary>
/// The capture agent of one experiment: runs the script, watches its folders, uploads every file it
/// creates or changes (once it has settled, and again after each later change), and when the script
/// ends, whatever the way, does a final full sync, seals the manifest and only then writes the final
/// status. It is the experiment record's and manifest's only writer. Sync never deletes.
/// </summary>
public sealed class CaptureAgent
{
    private readonly GridCatalog _catalog;
    private readonly string _run;
    private readonly string _experiment;
    private readonly CaptureOptions _options;
    /// <summary>Every file seen, in flat arrays (about 90 bytes a file): what the agent knows of it.</summary>
    private readonly FileTable _table = new();
    /// <summary>Files changed since their last upload (or never uploaded): the only ones a pass looks at.</summary>
    private readonly HashSet<int> _pending = new();
    private ManifestJournal? _journal;
    /// <summary>Paths the change notifications named since the last pass; too many, and the next pass is a full one.</summary>
    private readonly HashSet<string> _changed = new(StringComparer.Ordinal);
    private const int MaxChangedPaths = 16_384;
    private bool _changesOverflowed;
    private bool _watching;
    private DateTimeOffset _nextFullPass = DateTimeOffset.MinValue;
    private DateTimeOffset _lastFullPass = DateTimeOffset.MinValue;
    private TimeSpan _lastFullPassTook;
    private bool _fullPassRequested;
    /// <summary>Files taken from the pending list per round of uploads.</summary>
    private const int UploadBatch = 4096;
    private static readonly TimeSpan MinPassInterval = TimeSpan.FromMilliseconds(100);
    private readonly GridSyncState _sync = new();
    private readonly HashSet<string> _reportedUnstorable = new(StringComparer.Ordinal);
    private readonly List<(string Root, string Prefix)> _roots = new();
    private ExperimentRecord _record = new();
    /// <summary>Released by change notifications, so the loop rescans sooner than its interval.</summary>
    private readonly SemaphoreSlim _wake = new(0, 1);
    /// <summary>This agent, as its claim on the experiment names it.</summary>
    private readonly string _agentId = GridCatalog.NewClaimId("agent");

    public CaptureAgent(GridCatalog catalog, string run, string experiment, CaptureOptions options)
    {
        _catalog = catalog;
        _run = GridNames.CheckRunName(run);
        _experiment = GridNames.CheckExperimentName(experiment);
        _options = options;
        _roots.Add((Path.GetFullPath(options.WorkingDirectory), ""));
        foreach (var r in options.ArtifactRoots)
        {
            var full = Path.GetFullPath(r);
            _roots.Add((full, Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)) + "/"));
        }
        // A root inside another is watched as itself, not a second time under the outer one.
        _folders = new ModuleFolders(catalog.Store, _roots.Select(r => (r.Root, "it is watched as a folder of its own")));
        _metrics = new MetricsWatch(catalog.Clock, options.HeartbeatInterval, w => Warning?.Invoke(w), OpenMetrics);
    }

    private readonly MetricsWatch _metrics;

    /// <summary>A metrics file, read as capture reads any file (<see cref="ReadScope"/>).</summary>
    private Stream OpenMetrics(string fullPath) =>
        _scope.TryOpen(fullPath, out var skipped)?.ToStream() ?? throw new IOException($"'{fullPath}' is not read: {skipped ?? "it is gone"}.");

    private readonly ModuleFolders _folders;
    /// <summary>What may be read, once the roots exist: nothing outside them, no special file.</summary>
    private ReadScope _scope = null!;
    private readonly HashSet<string> _reportedSkipped = new(StringComparer.Ordinal);

    /// <summary>Warnings as they happen (an unstorable name, a failed upload); the pipeline thread writes them.</summary>
    public event Action<string>? Warning;

    /// <summary>The first signal that stopped the agent (<see cref="StopBySignal"/>), or null.</summary>
    private string? _signal;
    /// <summary>Cancelled by <see cref="StopBySignal"/>: stops the agent as its caller's token does.</summary>
    private readonly CancellationTokenSource _signalled = new();
    /// <summary>Cancelled when the stop budget of a signal runs out: what is still uploading then is cut off.</summary>
    private readonly CancellationTokenSource _budget = new();
    /// <summary>When the stop budget of a signal runs out (UTC ticks), or 0.</summary>
    private long _budgetEnds;

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
        if (Interlocked.CompareExchange(ref _signal, signal, null) is not null) return true;
        if (_options.StopBudget is { } budget)
        {
            Interlocked.Exchange(ref _budgetEnds, (DateTimeOffset.UtcNow + budget).UtcTicks);
            _budget.CancelAfter(Min(budget, TimeSpan.FromDays(20)));
        }
        _signalled.Cancel();
        return true;
    }

    /// <summary>Set once <see cref="RunAsync"/> is over.</summary>
    private bool _ended;

    /// <summary>The end of the stop budget, when a signal has started one.</summary>
    private DateTimeOffset? BudgetEnds => Interlocked.Read(ref _budgetEnds) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    /// <summary>The earlier of <paramref name="patience"/> and the end of a signal's stop budget.</summary>
    private Func<DateTimeOffset> Until(DateTimeOffset patience) => () => BudgetEnds is { } ends && ends < patience ? ends : patience;

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
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stop, _signalled.Token);
        // A stop is seen at once, not at the next rescan.
        using var wakeOnStop = stopping.Token.Register(Wake);
        foreach (var (root, _) in _roots) Directory.CreateDirectory(root);
        _scope = new ReadScope(_roots.Select(r => r.Root), _folders);
        // What is there before the script starts is an artifact only once it changes.
        var start = _table.Now;
        Scan(WholeRoots(), start, baseline: true);
        var now = _catalog.Clock.GetUtcNow();
        var command = string.Join(' ', new[] { _options.FileName }.Concat(_options.Arguments.Select(Quote)));
        // A new run is created with this experiment; a queued experiment's run was created by whoever
        // queued it, and if it is gone the experiment was removed: nothing is created then.
        if (!_options.Queued)
        {
            await _catalog.TryCreateRunAsync(new RunRecord { Name = _run, Created = now, Command = string.Join(' ', new[] { _options.FileName }.Concat(_options.Arguments)) }, CancellationToken.None, _options.ClaimSettle).ConfigureAwait(false);
        }
        // One writer per experiment: an ended one is never rewritten, a live one never joined.
        _record = await _catalog.ClaimExperimentAsync(_run, _experiment, existing =>
        {
            var r = existing ?? new ExperimentRecord { Run = _run, Experiment = _experiment, Created = now };
            foreach (var (k, v) in _options.Parameters) r.Parameters[k] = v;
            r.Status = GridStatus.Running;
            r.Started = now;
            r.Heartbeat = now;
            r.Agent = _agentId;
            r.Signal = null; // a Lost agent's, if it was signalled in its end
            r.Command = command;
            r.Sync = _sync;
            r.WorkingDirectory = _roots[0].Root;
            return r;
        }, takeQueued: true, mustExist: _options.Queued, CancellationToken.None, _options.ClaimSettle).ConfigureAwait(false);

        // Multipart uploads an earlier agent of this experiment left unfinished (it was killed) are
        // aborted now that this agent holds the experiment, so no parts are left behind.
        try
        {
            var sweep = await _catalog.AbortAbandonedUploadsAsync(_run, _experiment, CancellationToken.None).ConfigureAwait(false);
            if (sweep.Aborted.Count > 0) Warning?.Invoke($"Aborted {sweep.Aborted.Count} unfinished upload(s) left by an earlier agent of {GridNames.ExperimentId(_run, _experiment)}.");
            foreach (var e in sweep.NotAborted) Warning?.Invoke(e.Message);
        }
        catch (GridException ex) when (IsPassing(ex))
        {
            Warning?.Invoke($"Unfinished uploads of an earlier agent were not checked: {ex.Message}");
        }

        if (await StopRequestedAsync().ConfigureAwait(false))
        {
            // Stopped while it waited in the queue: it never starts.
            _record.Status = GridStatus.Stopped;
            _record.Finished = _record.Heartbeat = _catalog.Clock.GetUtcNow();
            if (_options.RemoveWorkingDirectory) RemoveWorkingDirectory(); // nothing ran in it
            await WriteRecordAsync().ConfigureAwait(false);
            return -1;
        }

        var logs = Path.Combine(Path.GetTempPath(), "grid-logs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(logs);
        using var journal = _journal = new ManifestJournal(_catalog, _run, _experiment, Path.Combine(logs, "manifest"));
        await PersistAsync("The manifest's start", () => journal.StartAsync(KeepEarlier, CancellationToken.None), Until(DateTimeOffset.UtcNow + _options.FinalSyncPatience)).ConfigureAwait(false);
        // Tags go on only once the claim holds: a refused agent tags nothing.
        if (_options.Tags.Count > 0)
            await PersistAsync("The experiment's tags", () => _catalog.AddTagsAsync(_run, _experiment, _options.Tags, CancellationToken.None), Until(DateTimeOffset.UtcNow + _options.FinalSyncPatience)).ConfigureAwait(false);
        // A folder met twice before the start (a bind mount of a folder into itself) would send the
        // change notifications' own walk round without end: then every pass is a full rescan instead.
        using var watchers = new WatcherSet(_folderMetTwice ? Array.Empty<string>() : _roots.Select(r => r.Root), OnChanged, OnOverflow);
        _watching = watchers.Complete && !_folderMetTwice;
        var stopped = false;
        var stopRequested = false;
        int exitCode;
        try
        {
            using var process = Start(logs, out var pumps);
            // Its start time, read while it is surely running: a number the system later gives another process is never walked.
            var script = ScriptProcesses.Identify(process.Id);
            var lastBeat = DateTimeOffset.MinValue;
            // The script's processes a signal's stop has seen (with their start times), killed at the end even if the script left them behind.
            var tree = new Dictionary<int, ulong>();
            while (!process.HasExited)
            {
                if (stopping.IsCancellationRequested || (stopRequested = await StopRequestedAsync().ConfigureAwait(false)))
                {
                    stopped = true;
                    if (Volatile.Read(ref _signal) is not null) await TerminateAsync(process, script, tree).ConfigureAwait(false);
                    try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                    break;
                }
                // The store being away for a while (an outage, a restart) never ends the agent: what
                // did not go now goes on a later pass. A stop cuts off what is uploading (the final sync sends it).
                await SyncAsync(final: false, stopping.Token).ConfigureAwait(false);
                _metrics.Refresh(_record, final: false); // published by the next heartbeat
                if (_catalog.Clock.GetUtcNow() - lastBeat >= _options.HeartbeatInterval)
                {
                    lastBeat = _catalog.Clock.GetUtcNow();
                    await TryAsync("The heartbeat", () => HeartbeatAsync(logs)).ConfigureAwait(false);
                }
                // Until the script exits, a change is noticed, or the rescan interval passes.
                await Task.WhenAny(process.WaitForExitAsync(CancellationToken.None), _wake.WaitAsync(_options.RescanInterval)).ConfigureAwait(false);
                // Let a burst of changes gather into one pass rather than a rescan per file written.
                await Task.WhenAny(process.WaitForExitAsync(CancellationToken.None), Task.Delay(MinPassInterval)).ConfigureAwait(false);
            }
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ScriptProcesses.KillLeftovers(tree);
            if (BudgetEnds is { } ends)
            {
                // A process the script started elsewhere (another session) may hold its output open: within the budget only.
                try { await Task.WhenAll(pumps).WaitAsync(Max(ends - DateTimeOffset.UtcNow, TimeSpan.Zero)).ConfigureAwait(false); }
                catch (TimeoutException) { Warning?.Invoke("The script's output may be incomplete: a process it started still holds it open."); }
            }
            else
            {
                await Task.WhenAll(pumps).ConfigureAwait(false);
            }
            exitCode = process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Warning?.Invoke($"Could not start '{_options.FileName}': {ex.Message}");
            exitCode = 127;
        }

        // A signal that came before the script's end is what ended it (or came with its end: a
        // scheduler signals the script too). One that comes later only shortens the end.
        var signal = Volatile.Read(ref _signal);

        // The end, whatever it was: final full sync, sealed manifest, then the status. A store that
        // is away is waited for (up to FinalSyncPatience, or what a signal's stop budget leaves), so
        // an outage at the end loses nothing that time allows; the sealed manifest and the status are
        // written (tried once at least) even when the time ran out with files pending.
        var deadline = Until(DateTimeOffset.UtcNow + _options.FinalSyncPatience);
        _record.Status = GridStatus.Syncing;
        _record.ExitCode = exitCode;
        _record.Signal = signal;
        await PersistAsync("The Syncing status", WriteRecordAsync, deadline).ConfigureAwait(false);
        await SyncAsync(final: true, _budget.Token).ConfigureAwait(false);
        for (var wait = TimeSpan.FromSeconds(1); _sync.FilesPending > 0 && DateTimeOffset.UtcNow < deadline(); wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(30).Ticks)))
        {
            var pause = Min(wait, deadline() - DateTimeOffset.UtcNow);
            Warning?.Invoke($"{_sync.FilesPending} file(s) did not reach the store in the final sync; trying again in {pause.TotalSeconds:0.#} s.");
            try { await Task.Delay(pause, _budget.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; } // a signal's budget ran out
            await SyncAsync(final: true, _budget.Token).ConfigureAwait(false);
            // Still alive while it waits: the experiment never reads as Lost.
            await TryAsync("The heartbeat", () => HeartbeatAsync(logs)).ConfigureAwait(false);
        }
        if (_sync.FilesPending > 0 && BudgetEnds is not null)
            Warning?.Invoke($"{_sync.FilesPending} file(s) did not reach the store before the time a {signal ?? "signal"} leaves ran out; the sealed manifest lists what did.");
        _metrics.Refresh(_record, final: true);
        try
        {
            await PersistAsync("The script's output", () => UploadLogsAsync(logs, _budget.Token), deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_budget.IsCancellationRequested)
        {
            Warning?.Invoke("The script's output since the last heartbeat was not stored: the time a signal leaves ran out.");
        }
        await PersistAsync("The sealed manifest", () => journal.SealAsync(IsLatest, CancellationToken.None), deadline).ConfigureAwait(false);
        // A scheduler (or Ctrl+C) signals the script too, which may die of it before this agent's
        // handler has run: a signal that came during the end of a script that did not succeed is
        // what ended it. One that comes after a success only shortened the end.
        if (signal is null && exitCode != 0 && Volatile.Read(ref _signal) is { } late) _record.Signal = signal = late;
        // A SIGTERM no one asked for through the store (a time limit, scancel, a node going down) is a failure; Stop-GridRun and Ctrl+C are stops.
        if (signal == "SIGTERM" && !stopRequested) stopRequested = await StopRequestedAsync().ConfigureAwait(false);
        _record.Status = signal == "SIGTERM" && !stopRequested ? GridStatus.Failed
            : stopped || signal is not null ? GridStatus.Stopped
            : exitCode == 0 ? GridStatus.Succeeded : GridStatus.Failed;
        // Every file stored: the folder goes before the final status, so an ended experiment's folder is gone.
        if (_options.RemoveWorkingDirectory)
        {
            watchers.Dispose();
            if (WhyKept() is { } why) Warning?.Invoke($"Kept the working folder '{_roots[0].Root}': {why}.");
            else RemoveWorkingDirectory();
        }
        _record.Finished = _catalog.Clock.GetUtcNow();
        _record.Heartbeat = _record.Finished;
        await PersistAsync("The final status", WriteRecordAsync, deadline).ConfigureAwait(false);
        try { Directory.Delete(logs, recursive: true); } catch (IOException) { }
        return exitCode;
    }

    /// <summary>Why the working folder must stay after the final sync (something in it is not in the store), or null.</summary>
    private string? WhyKept()
    {
        var why = new List<string>();
        if (_sync.FilesPending > 0) why.Add($"{_sync.FilesPending} file(s) did not reach the store");
        if (_sync.Unstorable.Count > 0) why.Add($"{_reportedUnstorable.Count} file(s) could not be stored (Sync.Unstorable names them)");
        if (_reportedSkipped.Count > 0) why.Add($"{_reportedSkipped.Count} folder(s) were skipped");
        if (UnsentEarlierFiles() is > 0 and var earlier) why.Add($"{earlier} file(s) were there before the script started and, unchanged, are not artifacts");
        return why.Count == 0 ? null : string.Join("; ", why);
    }

    /// <summary>
    /// Files in the working folder that were there before the script started, never changed, and so
    /// never stored (a folder of the user's, given to Invoke-GridExperiment): removing them would lose them.
    /// </summary>
    private int UnsentEarlierFiles()
    {
        var top = Path.TrimEndingDirectorySeparator(_roots[0].Root) + Path.DirectorySeparatorChar;
        var count = 0;
        for (var i = 0; i < _table.Count; i++)
        {
            ref var s = ref _table[i];
            // Pending ones, and ones that cannot be stored, are counted as such.
            if (s.Entry != -1 || (s.Flags & FileTable.SlotFlags.Dirty) != 0) continue;
            var path = _table.PathOf(i);
            if (_reportedUnstorable.Contains(path)) continue;
            var full = FullPathOf(s.Root, path);
            // Still there (File.Exists is true of a link that leads nowhere too), and inside the folder that would be removed.
            if (full.StartsWith(top, StringComparison.Ordinal) && File.Exists(full)) count++;
        }
        return count;
    }

    /// <summary>Removes the working folder; the record stops naming it once it is gone.</summary>
    private void RemoveWorkingDirectory()
    {
        if (WorkingFolders.Remove(_roots[0].Root) is { } problem) Warning?.Invoke($"The working folder '{_roots[0].Root}' was not removed: {problem}");
        else _record.WorkingDirectory = null;
    }

    /// <summary>Failures that pass: the store is away for now (outage, busy, disk full), not a wrong name or a refusal.</summary>
    private static bool IsPassing(GridException ex) => ex.IsTransient || ex.Kind is GridErrorKind.StoreUnavailable or GridErrorKind.WriteFailed;

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

    /// <summary>
    /// Sends the script SIGTERM (where there are signals) and waits for it to exit, at most
    /// min(5 s, a third of the stop budget), noting the processes it has started meanwhile so that
    /// what is left of them is killed afterwards. Slurm has signalled them all already; a container's
    /// runtime or kill(1) only this process.
    /// </summary>
    private async Task TerminateAsync(Process process, (int Pid, ulong Start)? script, Dictionary<int, ulong> tree)
    {
        if (process.HasExited) return;
        ScriptProcesses.AddDescendants(script, tree);
        if (!ScriptProcesses.Terminate(process.Id)) return;
        var wait = Min(TimeSpan.FromSeconds(5), (_options.StopBudget ?? TimeSpan.FromSeconds(15)) / 3);
        var until = DateTimeOffset.UtcNow + wait;
        while (DateTimeOffset.UtcNow < until)
        {
            await Task.WhenAny(process.WaitForExitAsync(CancellationToken.None), Task.Delay(Min(TimeSpan.FromMilliseconds(250), until - DateTimeOffset.UtcNow))).ConfigureAwait(false);
            if (process.HasExited) return;
            ScriptProcesses.AddDescendants(script, tree);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>A write that must happen: tried again with growing pauses until <paramref name="deadline"/>, then its error is thrown.</summary>
    private Task PersistAsync(string what, Func<Task> work, DateTimeOffset deadline) => PersistAsync(what, work, () => deadline);

    /// <summary>A write that must happen: tried (once at least) and again with growing pauses until <paramref name="deadline"/> (asked each time), then its error is thrown.</summary>
    private async Task PersistAsync(string what, Func<Task> work, Func<DateTimeOffset> deadline)
    {
        for (var wait = TimeSpan.FromSeconds(1); ; wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(30).Ticks)))
        {
            try
            {
                await work().ConfigureAwait(false);
                return;
            }
            catch (GridException ex) when (IsPassing(ex) && DateTimeOffset.UtcNow + wait < deadline())
            {
                Warning?.Invoke($"{what} did not reach the store yet; trying again in {wait.TotalSeconds:0} s: {ex.Message}");
                await Task.Delay(wait, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private Process Start(string logs, out Task[] pumps)
    {
        var psi = new ProcessStartInfo(_options.FileName)
        {
            WorkingDirectory = _roots[0].Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in _options.Arguments) psi.ArgumentList.Add(a);
        foreach (var (k, v) in _options.Environment) psi.Environment[k] = v;
        psi.Environment["GRID_RUN"] = _run;
        psi.Environment["GRID_EXPERIMENT"] = _experiment;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("The process did not start.");
        pumps = new[]
        {
            Pump(process.StandardOutput.BaseStream, Path.Combine(logs, "stdout.log")),
            Pump(process.StandardError.BaseStream, Path.Combine(logs, "stderr.log")),
        };
        return process;
    }

    private static async Task Pump(Stream from, string file)
    {
        await using var to = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 4096, FileOptions.Asynchronous);
        var buffer = new byte[8192];
        int n;
        while ((n = await from.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
            await to.FlushAsync().ConfigureAwait(false);
        }
    }

    private async Task<bool> StopRequestedAsync()
    {
        try
        {
            return await _catalog.StopRequestedAsync(_run, _experiment, CancellationToken.None).ConfigureAwait(false);
        }
        catch (GridException ex) when (IsPassing(ex))
        {
            return false; // asked again on the next pass
        }
    }

    private IEnumerable<(int Root, string Folder)> WholeRoots() => _roots.Select((r, i) => (i, r.Root));

    /// <summary>
    /// Takes note of every file under the given folders (each inside root <c>Root</c>), its size and
    /// time read as the folder is listed. Nothing is allocated per file: each path is spelled into
    /// one reused buffer and looked up in the table as it is (a full rescan of 1,000,000 files makes
    /// no garbage of a million strings).
    /// </summary>
    private void Scan(IEnumerable<(int Root, string Folder)> folders, uint now, bool baseline)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        // Every folder walked, by device and inode: none is walked twice in a pass (a bind mount of a
        // folder into itself, two roots that are one folder).
        var walked = new WalkedFolders();
        foreach (var (r, folder) in folders)
        {
            var (root, prefix) = _roots[r];
            if (!Directory.Exists(folder) || !FirstVisit(folder, walked)) continue;
            if (_folders.IsInStore(folder))
            {
                // A root that is the store, or inside it, by a link: its records are never artifacts.
                if (_reportedSkipped.Add(folder)) Warning?.Invoke($"Skipped '{folder}': it is the store's own folder, or inside it (its records are not artifacts).");
                continue;
            }
            var index = r;
            // Entries name their folder without a trailing separator; what follows the root (and its separator) is the relative folder.
            var trimmed = Path.TrimEndingDirectorySeparator(root);
            var skip = trimmed.Length + (Path.EndsInDirectorySeparator(trimmed) ? 0 : 1);
            try
            {
                var files = new System.IO.Enumeration.FileSystemEnumerable<bool>(folder, (ref System.IO.Enumeration.FileSystemEntry e) =>
                {
                    var dir = e.Directory.Length > skip ? e.Directory[skip..] : ReadOnlySpan<char>.Empty;
                    var path = SpellPath(prefix, dir, e.FileName);
                    long length, ticks;
                    try { length = e.Length; ticks = e.LastWriteTimeUtc.UtcTicks; }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; } // gone since the folder was listed
                    // A link is seen by its target's size and time, so a change of the target is noticed
                    // (where it leads is checked when it is read).
                    if ((e.Attributes & FileAttributes.ReparsePoint) != 0) TargetSizeAndTime(e.ToFullPath(), ref length, ref ticks);
                    Observe(path, index, length, ticks, now, baseline);
                    return true;
                }, options)
                {
                    ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !e.IsDirectory,
                    // A link to a folder is never walked (its target, if captured, is walked as itself);
                    // the store's own folder, and the module's working and temporary folders, never are.
                    ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) =>
                        (e.Attributes & FileAttributes.ReparsePoint) != 0 ? SkipFolderLink(e.ToFullPath())
                        : prefix.Length + e.Directory.Length - skip + 1 + e.FileName.Length > GridNames.MaxArtifactPathBytes ? SkipTooDeep(e.ToFullPath())
                        : ShouldWalk(e.ToFullPath()) && FirstVisit(e.ToFullPath(), walked),
                };
                foreach (var _ in files) { }
            }
            catch (DirectoryNotFoundException) { } // removed by the script meanwhile: what was stored stays stored
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // What the walk found before it stands; the next pass walks again.
                if (_reportedSkipped.Add("walk:" + folder)) Warning?.Invoke($"'{folder}' could not be walked to its end: {ex.Message}");
            }
        }
    }

    /// <summary>Set once a walk has met a folder a second time (by device and inode).</summary>
    private bool _folderMetTwice;

    /// <summary>Whether this pass walks <paramref name="folder"/> for the first time (by device and inode, where they can be had).</summary>
    private bool FirstVisit(string folder, WalkedFolders walked)
    {
        if (walked.FirstVisit(folder)) return true;
        _folderMetTwice = true;
        if (_reportedSkipped.Add(folder)) Warning?.Invoke($"Skipped '{folder}': it is a folder already captured by another path (the same device and inode); no folder is walked twice.");
        return false;
    }

    /// <summary>A folder whose path is already longer than any artifact's may be: nothing in it could be stored.</summary>
    private bool SkipTooDeep(string folder)
    {
        if (_reportedSkipped.Add(folder)) Warning?.Invoke($"Skipped '{folder}': its path is longer than an artifact's may be ({GridNames.MaxArtifactPathBytes} bytes), so nothing in it can be stored.");
        return false;
    }

    /// <summary>A link to a folder, met in a walk: never followed, said once.</summary>
    private bool SkipFolderLink(string link)
    {
        if (_reportedSkipped.Add(link)) Warning?.Invoke($"Skipped '{link}': {_scope.FolderLinkProblem(link)}.");
        return false;
    }

    /// <summary>The size and time of a link's target; the link's own when it leads nowhere (reading it then says why).</summary>
    private static void TargetSizeAndTime(string link, ref long length, ref long ticks)
    {
        if (NativeFiles.Supported)
        {
            if (NativeFiles.TryStat(link, follow: true, out var target) == NativeFiles.Failure.None) (length, ticks) = (target.Length, target.LastWriteTicks);
            return;
        }
        try
        {
            if (File.ResolveLinkTarget(link, returnFinalTarget: true) is FileInfo { Exists: true } info) (length, ticks) = (info.Length, info.LastWriteTimeUtc.Ticks);
        }
        catch (IOException) { }
    }

    private char[] _pathBuffer = new char[1024];

    /// <summary>An artifact path (root prefix, relative folder, name; '/' between) in the reused buffer.</summary>
    private ReadOnlySpan<char> SpellPath(string prefix, ReadOnlySpan<char> dir, ReadOnlySpan<char> name)
    {
        var length = prefix.Length + dir.Length + (dir.IsEmpty ? 0 : 1) + name.Length;
        if (length > _pathBuffer.Length) _pathBuffer = new char[Math.Max(length, _pathBuffer.Length * 2)];
        var span = _pathBuffer.AsSpan(0, length);
        prefix.AsSpan().CopyTo(span);
        var at = prefix.Length;
        if (!dir.IsEmpty)
        {
            dir.CopyTo(span[at..]);
            if (Path.DirectorySeparatorChar != '/') span.Slice(at, dir.Length).Replace(Path.DirectorySeparatorChar, '/');
            at += dir.Length;
            span[at++] = '/';
        }
        name.CopyTo(span[at..]);
        return span;
    }

    private bool ShouldWalk(string folder)
    {
        if (_folders.WhySkipped(folder, out var otherPath) is not { } why) return true;
        if (otherPath) _folderMetTwice = true;
        if (_reportedSkipped.Add(folder)) Warning?.Invoke($"Skipped '{folder}': {why}.");
        return false;
    }

    /// <summary>The local path of a file, built only when it is needed (an upload, a name check).</summary>
    private string FullPathOf(int root, string path)
    {
        var (folder, prefix) = _roots[root];
        return Path.Join(folder, path.AsSpan(prefix.Length));
    }

    /// <summary>
    /// Takes note of one file as a pass found it: a new size or time marks it changed (pending) and
    /// restarts its settle time; with <paramref name="baseline"/> (before the script starts) it is only remembered.
    /// </summary>
    private void Observe(ReadOnlySpan<char> path, int root, long length, long ticks, uint now, bool baseline)
    {
        // A name whose bytes are not UTF-8 reads back with U+FFFD in it and cannot be opened by that name.
        if (path.Contains('\uFFFD') && !File.Exists(FullPathOf(root, path.ToString())))
        {
            if (!baseline) ReportUnstorable(path.ToString(), "the file name is not valid UTF-8, so it cannot be read or stored by name; rename it");
            return;
        }
        var i = _table.FindOrAdd(path, (byte)root, out _);
        ref var s = ref _table[i];
        s.Root = (byte)root;
        if (s.Length == length && s.Ticks == ticks) return;
        s.Length = length;
        s.Ticks = ticks;
        if (baseline) return;
        s.SeenAt = now;
        s.Flags |= FileTable.SlotFlags.Dirty;
        _pending.Add(i);
    }

    /// <summary>A file an earlier agent of this experiment stored (it was lost): counted as synced, and kept in the sealed manifest unless sent again.</summary>
    private void KeepEarlier(ManifestEntry entry)
    {
        var i = _table.FindOrAdd(entry.Path, 0, out _);
        ref var s = ref _table[i];
        if (s.Entry != -1) return;
        s.Entry = EarlierEntry;
        s.SyncedSize = entry.Size;
        _sync.FilesSynced++;
        _sync.BytesSynced += entry.Size;
    }

    /// <summary><see cref="FileTable.Slot.Entry"/> of a file whose latest entry an earlier agent wrote.</summary>
    private const int EarlierEntry = -2;

    /// <summary>The most files <see cref="GridSyncState.Unstorable"/> names (the record is rewritten every heartbeat); a last line counts the rest.</summary>
    public const int MaxUnstorableListed = 1000;

    private int _unstorableUnlisted;

    /// <summary>A file not stored, and why: said once in a warning and listed in the record (from any upload worker).</summary>
    private void ReportUnstorable(string path, string problem)
    {
        lock (_syncGate)
        {
            if (!_reportedUnstorable.Add(path)) return;
            if (_sync.Unstorable.Count < MaxUnstorableListed) _sync.Unstorable.Add($"{path}: {problem}");
            else
            {
                if (_unstorableUnlisted++ > 0) _sync.Unstorable.RemoveAt(_sync.Unstorable.Count - 1);
                _sync.Unstorable.Add($"... and {_unstorableUnlisted} more, named in the agent's warnings");
            }
        }
        Warning?.Invoke($"'{path}' cannot be stored as an artifact: {problem}.");
    }

    /// <summary>A file reported earlier that has since gone up (a link that now leads somewhere, a FIFO replaced by a file).</summary>
    private void Unreport(string path)
    {
        lock (_syncGate)
        {
            if (!_reportedUnstorable.Remove(path)) return;
            var prefix = path + ": ";
            _sync.Unstorable.RemoveAll(u => u.StartsWith(prefix, StringComparison.Ordinal));
        }
    }

    /// <summary>A path a change notification named: the file itself, or every file of a folder that appeared.</summary>
    private void ObservePath(string fullPath, uint now)
    {
        // The innermost root it is under (a nested root is watched as itself).
        var root = -1;
        for (var r = 0; r < _roots.Count; r++)
        {
            var folder = Path.TrimEndingDirectorySeparator(_roots[r].Root);
            if (fullPath.Length > folder.Length && fullPath.StartsWith(folder, StringComparison.Ordinal) && fullPath[folder.Length] == Path.DirectorySeparatorChar
                && (root < 0 || folder.Length > _roots[root].Root.Length)) root = r;
        }
        if (root < 0) return;
        var top = Path.TrimEndingDirectorySeparator(_roots[root].Root);
        // Deeper than any artifact path may be: nothing there can be stored (a full rescan names the folder).
        if (_roots[root].Prefix.Length + fullPath.Length - top.Length - 1 > GridNames.MaxArtifactPathBytes) return;
        // Never inside a folder a rescan skips (the store's own, the module's).
        for (var dir = Path.GetDirectoryName(fullPath); dir is not null && dir.Length > top.Length; dir = Path.GetDirectoryName(dir))
        {
            if (_folders.WhySkipped(dir) is not null) return;
        }
        FileAttributes attributes;
        try { attributes = File.GetAttributes(fullPath); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; } // removed since (what was stored stays stored), or not ours to look at
        if ((attributes & FileAttributes.Directory) != 0)
        {
            if ((attributes & FileAttributes.ReparsePoint) != 0) SkipFolderLink(fullPath);
            else if (ShouldWalk(fullPath)) Scan(new[] { (root, fullPath) }, now, baseline: false);
            return;
        }
        var rel = fullPath[(top.Length + 1)..];
        if (Path.DirectorySeparatorChar != '/') rel = rel.Replace(Path.DirectorySeparatorChar, '/');
        if (!SizeAndTime(fullPath, out var length, out var ticks)) return;
        Observe(_roots[root].Prefix + rel, root, length, ticks, now, baseline: false);
    }

    /// <summary>Whether manifest entry number <paramref name="entry"/> is the latest of <paramref name="path"/> (-1: an earlier agent's).</summary>
    private bool IsLatest(string path, int entry)
    {
        var i = _table.Find(path);
        if (entry < 0) return i < 0 || _table[i].Entry < 0;
        return i >= 0 && _table[i].Entry == entry;
    }

    /// <summary>
    /// One pass: notice what changed, upload what has settled (everything changed, when final).
    /// A file that changes while it uploads is checked after the upload and sent again later.
    /// </summary>
    /// <param name="final">The final sync: a full rescan, and no settle time.</param>
    /// <param name="cut">Cuts off the uploads in flight (a stop, a signal's budget): their files stay pending.</param>
    private async Task SyncAsync(bool final, CancellationToken cut)
    {
        var now = _catalog.Clock.GetUtcNow();
        var tick = _table.Now;
        string[] changed;
        bool overflowed;
        lock (_changed)
        {
            changed = _changed.ToArray();
            _changed.Clear();
            overflowed = _changesOverflowed;
            _changesOverflowed = false;
        }
        // After an overflow the next full pass comes soon, but never more often than ten times its own
        // length: a burst of writes costs at most a tenth of the time in rescans, and what it missed
        // is found by that pass (or the final one).
        if (overflowed) _fullPassRequested = true;
        var fullDue = DateTimeOffset.UtcNow >= _nextFullPass
            || (_fullPassRequested && DateTimeOffset.UtcNow >= _lastFullPass + TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(2).Ticks, _lastFullPassTook.Ticks * 10)));
        if (final || !_watching || fullDue)
        {
            // Every file of every root: at the end, after a notification queue overflowed, where
            // notifications cannot be had, and now and then for what no notification told of.
            var watch = Stopwatch.StartNew();
            Scan(WholeRoots(), tick, baseline: false);
            var spacing = TimeSpan.FromTicks(Math.Max(_options.FullRescanInterval.Ticks, watch.Elapsed.Ticks * 20));
            _nextFullPass = DateTimeOffset.UtcNow + spacing;
            _lastFullPass = DateTimeOffset.UtcNow;
            _lastFullPassTook = watch.Elapsed;
            _fullPassRequested = false;
        }
        else
        {
            foreach (var path in changed) ObservePath(path, tick);
            // A file still settling is looked at again, notified or not.
            if (_pending.Count <= 10_000)
            {
                foreach (var i in _pending.ToArray()) Restat(i, tick);
            }
        }

        // A slow upload (a large checkpoint, a store that answers late) does not hold back the manifest
        // of the files that went up beside it: their entries go to the store on the journal's cadence.
        using var passDone = new CancellationTokenSource();
        var flusher = !final && _journal is { } open ? FlushWhileUploadingAsync(open, passDone.Token) : Task.CompletedTask;
        try
        {
            (_sync.FilesPending, _sync.BytesPending) = await UploadSettledAsync(tick, final, cut).ConfigureAwait(false);
        }
        finally
        {
            passDone.Cancel();
            await flusher.ConfigureAwait(false);
        }
        // What this pass uploaded goes to the store as one segment of the manifest (the final sync
        // leaves it to the sealed manifest written right after).
        if (!final && _journal is { } journal)
        {
            await TryAsync("The manifest", () => journal.FlushAsync(journal.SuggestedInterval, IsLatest, CancellationToken.None)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Uploads the pending files that have settled (all of them, when final); returns how many files,
    /// and bytes, are still pending (settling, or failed this pass).
    /// </summary>
    private async Task<(int Files, long Bytes)> UploadSettledAsync(uint tick, bool final, CancellationToken cut)
    {
        long pendingBytes = 0;
        var pending = 0;
        var failed = 0;
        long failedBytes = 0;
        // Settled files go up several at a time (large ones in parts, from the file itself), a batch
        // at a time: only a batch's paths are ever spelled out as strings, however many are pending.
        var candidates = _pending.ToArray();
        var batch = new List<(string Path, int Slot)>(UploadBatch);
        for (var next = 0; next < candidates.Length;)
        {
            batch.Clear();
            for (; next < candidates.Length && batch.Count < UploadBatch; next++)
            {
                var i = candidates[next];
                var s = _table[i];
                if (!final && FileTable.Elapsed(s.SeenAt, tick) < _options.SettleTime) { pending++; pendingBytes += s.Length; continue; }
                var path = _table.PathOf(i);
                if (_catalog.ArtifactPathProblem(_run, _experiment, path) is { } problem)
                {
                    ReportUnstorable(path, problem);
                    Settle(i);
                    continue;
                }
                batch.Add((path, i));
            }
            batch.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
            var uploaded = new System.Collections.Concurrent.ConcurrentBag<int>();
            await Parallel.ForEachAsync(batch, new ParallelOptions { MaxDegreeOfParallelism = TransferOptions.DefaultFilesInFlight }, async (f, _) =>
            {
                switch (await UploadAsync(f.Path, f.Slot, cut).ConfigureAwait(false))
                {
                    case UploadOutcome.Done or UploadOutcome.Skipped:
                        uploaded.Add(f.Slot);
                        break;
                    case UploadOutcome.Failed:
                        Interlocked.Increment(ref failed);
                        Interlocked.Add(ref failedBytes, Math.Max(0, _table[f.Slot].Length));
                        break;
                }
            }).ConfigureAwait(false);
            foreach (var i in uploaded) Settle(i);
        }
        return (pending + failed, pendingBytes + failedBytes);
    }

    /// <summary>Sends the manifest's entries on the journal's cadence until the pass's uploads are done.</summary>
    private async Task FlushWhileUploadingAsync(ManifestJournal journal, CancellationToken passDone)
    {
        while (true)
        {
            try { await Task.Delay(journal.SuggestedInterval, passDone).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            await TryAsync("The manifest", () => journal.FlushAsync(journal.SuggestedInterval, IsLatest, CancellationToken.None)).ConfigureAwait(false);
        }
    }

    /// <summary>Looks at a pending file again: a new size or time restarts its settle time.</summary>
    private void Restat(int i, uint now)
    {
        var s = _table[i];
        if (!SizeAndTime(FullPathOf(s.Root, _table.PathOf(i)), out var length, out var ticks)) return; // the upload finds it gone
        if (length == s.Length && ticks == s.Ticks) return;
        ref var slot = ref _table[i];
        slot.Length = length;
        slot.Ticks = ticks;
        slot.SeenAt = now;
    }

    /// <summary>A file's size and time (a link's target's); false when it is gone or cannot be looked at.</summary>
    private static bool SizeAndTime(string fullPath, out long length, out long ticks)
    {
        length = ticks = -1;
        var info = new FileInfo(fullPath);
        try
        {
            if ((int)info.Attributes == -1) return false;
            (length, ticks) = (info.Length, info.LastWriteTimeUtc.Ticks);
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0) TargetSizeAndTime(fullPath, ref length, ref ticks);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>A file done with for now (uploaded as it is, gone, or unstorable): off the pending list.</summary>
    private void Settle(int i)
    {
        _table[i].Flags &= ~FileTable.SlotFlags.Dirty;
        _pending.Remove(i);
    }

    private void OnChanged(string path)
    {
        lock (_changed)
        {
            if (_changed.Count < MaxChangedPaths) _changed.Add(path);
            else _changesOverflowed = true;
        }
        Wake();
    }

    private void OnOverflow()
    {
        lock (_changed) _changesOverflowed = true;
        Wake();
    }

    private void Wake()
    {
        try { _wake.Release(); }
        catch (SemaphoreFullException) { } // already awake
    }

    /// <summary>
    /// One upload of one file in one pass. It is read only if it may be (<see cref="ReadScope"/>), and
    /// only as far as its length when opened: a file that changed while it went up is recorded as it
    /// was sent (the manifest always tells what the store holds) and stays pending, so the next pass
    /// sends it again. A failed upload waits for the next pass; each of its requests is retried by the
    /// one request policy (<see cref="Transfer.Retry"/>).
    /// </summary>
    private enum UploadOutcome { Done, Changing, Failed, Skipped }

    private readonly object _syncGate = new();

    private async Task<UploadOutcome> UploadAsync(string path, int slot, CancellationToken cut)
    {
        var fullPath = FullPathOf(_table[slot].Root, path);
        try
        {
            using var file = _scope.TryOpen(fullPath, out var skipped);
            if (file is null)
            {
                if (skipped is null) return UploadOutcome.Done; // deleted since: what was stored stays stored
                ReportUnstorable(path, skipped);
                return UploadOutcome.Skipped;
            }
            var entry = await _catalog.PutArtifactFileAsync(_run, _experiment, path, file, cut).ConfigureAwait(false);
            Unreport(path);
            var number = _journal!.Add(entry);
            _metrics.Noticed(path, fullPath, entry);
            var changed = file.ChangedSinceOpened(out var length, out var modified);
            lock (_syncGate)
            {
                ref var s = ref _table[slot];
                if (s.Entry == -1) _sync.FilesSynced++; // new to the manifest (not sent before, by this agent or an earlier one)
                _sync.BytesSynced += entry.Size - Math.Max(0, s.SyncedSize);
                s.SyncedSize = entry.Size;
                s.Entry = number;
                _sync.LastFile = path;
                _sync.LastSynced = _catalog.Clock.GetUtcNow();
                // What went up is what was on disk when it was opened: settled until it changes again.
                // One that changed meanwhile settles anew from now.
                s.Length = changed ? length : file.Length;
                s.Ticks = changed ? modified.Ticks : file.LastWriteTimeUtc.Ticks;
                if (changed) s.SeenAt = _table.Now;
            }
            return changed ? UploadOutcome.Changing : UploadOutcome.Done;
        }
        catch (OperationCanceledException) when (cut.IsCancellationRequested)
        {
            return UploadOutcome.Failed; // cut off by a stop: still pending
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or GridException)
        {
            // Deleted between the look above and the read (the script removed it): as above, what was stored stays stored.
            if (!Path.Exists(fullPath)) return UploadOutcome.Done;
            // The request policy has already retried what could pass; the next pass tries again.
            Warning?.Invoke($"'{path}' was not synced yet: {ex.Message}");
            return UploadOutcome.Failed;
        }
    }

    private async Task HeartbeatAsync(string logs)
    {
        _record.Heartbeat = _catalog.Clock.GetUtcNow();
        _sync.AgentMemory = Process.GetCurrentProcess().WorkingSet64;
        await WriteRecordAsync().ConfigureAwait(false);
        await UploadLogsAsync(logs, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task UploadLogsAsync(string logs, CancellationToken ct)
    {
        foreach (var stream in new[] { "stdout", "stderr" })
        {
            var file = Path.Combine(logs, stream + ".log");
            if (File.Exists(file)) await _catalog.WriteLogFileAsync(_run, _experiment, stream, file, ct).ConfigureAwait(false);
        }
    }

    private Task WriteRecordAsync() => _catalog.WriteExperimentRecordAsync(_record, CancellationToken.None);

    private static string Quote(string a) => a.Length > 0 && !a.Any(char.IsWhiteSpace) && !a.Contains('"') ? a : "\"" + a.Replace("\"", "\\\"") + "\"";

    /// <summary>Change notifications for every root, by path; an overflow makes the next pass a full rescan.</summary>
    private sealed class WatcherSet : IDisposable
    {
        private readonly List<FileSystemWatcher> _watchers = new();
        public WatcherSet(IEnumerable<string> roots, Action<string> changed, Action overflowed)
        {
            Complete = true;
            foreach (var root in roots)
            {
                try
                {
                    var w = new FileSystemWatcher(root) { IncludeSubdirectories = true, InternalBufferSize = 64 * 1024 };
                    w.Changed += (_, e) => changed(e.FullPath);
                    w.Created += (_, e) => changed(e.FullPath);
                    w.Renamed += (_, e) => changed(e.FullPath);
                    w.Error += (_, _) => overflowed();
                    w.EnableRaisingEvents = true;
                    _watchers.Add(w);
                }
                catch (Exception ex) when (ex is IOException or ArgumentException)
                {
                    // Too many watches (inotify limits): every pass is then a full rescan.
                    Complete = false;
                }
            }
        }

        /// <summary>Whether every root is watched.</summary>
        public bool Complete { get; }

        public void Dispose() { foreach (var w in _watchers) w.Dispose(); }
    }
}
