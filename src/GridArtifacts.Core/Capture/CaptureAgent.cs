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
    /// <summary>A file is uploaded once it has not changed for this long.</summary>
    public TimeSpan SettleTime { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>A full rescan this often, whatever the change notifications said.</summary>
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromSeconds(1);
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
    private readonly Dictionary<string, Tracked> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Length, long Ticks)> _before = new(StringComparer.Ordinal);
    private readonly ManifestRecord _manifest;
    private readonly Dictionary<string, ManifestEntry> _entries = new(StringComparer.Ordinal);
    private const int UploadConcurrency = 16;
    private static readonly TimeSpan MinPassInterval = TimeSpan.FromMilliseconds(100);
    private readonly GridSyncState _sync = new();
    private readonly HashSet<string> _reportedUnstorable = new(StringComparer.Ordinal);
    private readonly List<(string Root, string Prefix)> _roots = new();
    private ExperimentRecord _record = new();
    /// <summary>Released by change notifications, so the loop rescans sooner than its interval.</summary>
    private readonly SemaphoreSlim _wake = new(0, 1);
    private bool _manifestDirty;
    private DateTimeOffset _manifestWritten = DateTimeOffset.MinValue;
    /// <summary>This agent, as its claim on the experiment names it.</summary>
    private readonly string _agentId = GridCatalog.NewClaimId("agent");

    private sealed class Tracked
    {
        public required string FullPath;
        public long Length;
        public long Ticks;
        public DateTimeOffset SeenAt;
        public long UploadedLength = -1;
        public long UploadedTicks = -1;
    }

    public CaptureAgent(GridCatalog catalog, string run, string experiment, CaptureOptions options)
    {
        _catalog = catalog;
        _run = GridNames.CheckRunName(run);
        _experiment = GridNames.CheckExperimentName(experiment);
        _options = options;
        _manifest = new ManifestRecord { Run = run, Experiment = experiment };
        _roots.Add((Path.GetFullPath(options.WorkingDirectory), ""));
        foreach (var r in options.ArtifactRoots)
        {
            var full = Path.GetFullPath(r);
            _roots.Add((full, Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)) + "/"));
        }
        // A root inside another is watched as itself, not a second time under the outer one.
        _folders = new ModuleFolders(catalog.Store, _roots.Select(r => (r.Root, "it is watched as a folder of its own")));
    }

    private readonly ModuleFolders _folders;
    private readonly HashSet<string> _reportedSkipped = new(StringComparer.Ordinal);

    /// <summary>Warnings as they happen (an unstorable name, a failed upload); the pipeline thread writes them.</summary>
    public event Action<string>? Warning;

    /// <summary>Runs the experiment to the end and returns the script's exit code (-1 when it was killed by a signal).</summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        foreach (var (root, _) in _roots) Directory.CreateDirectory(root);
        foreach (var e in Scan()) if (e.Length >= 0) _before[e.Path] = (e.Length, e.Ticks);
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
            r.Command = command;
            r.Sync = _sync;
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
            await WriteRecordAsync().ConfigureAwait(false);
            return -1;
        }

        var logs = Path.Combine(Path.GetTempPath(), "grid-logs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(logs);
        using var watchers = new WatcherSet(_roots.Select(r => r.Root), Wake);
        var stopRequested = false;
        int exitCode;
        try
        {
            using var process = Start(logs, out var pumps);
            var lastBeat = DateTimeOffset.MinValue;
            while (!process.HasExited)
            {
                if (stop.IsCancellationRequested || await StopRequestedAsync().ConfigureAwait(false))
                {
                    stopRequested = true;
                    try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                    break;
                }
                // The store being away for a while (an outage, a restart) never ends the agent: what
                // did not go now goes on a later pass.
                await SyncAsync(final: false).ConfigureAwait(false);
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
            await Task.WhenAll(pumps).ConfigureAwait(false);
            exitCode = process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Warning?.Invoke($"Could not start '{_options.FileName}': {ex.Message}");
            exitCode = 127;
        }

        // The end, whatever it was: final full sync, sealed manifest, then the status. A store that
        // is away is waited for (up to FinalSyncPatience), so an outage at the end loses nothing.
        var deadline = DateTimeOffset.UtcNow + _options.FinalSyncPatience;
        _record.Status = GridStatus.Syncing;
        _record.ExitCode = exitCode;
        await PersistAsync("The Syncing status", WriteRecordAsync, deadline).ConfigureAwait(false);
        await SyncAsync(final: true).ConfigureAwait(false);
        for (var wait = TimeSpan.FromSeconds(1); _sync.FilesPending > 0 && DateTimeOffset.UtcNow < deadline; wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(30).Ticks)))
        {
            Warning?.Invoke($"{_sync.FilesPending} file(s) did not reach the store in the final sync; trying again in {wait.TotalSeconds:0} s.");
            await Task.Delay(wait, CancellationToken.None).ConfigureAwait(false);
            await SyncAsync(final: true).ConfigureAwait(false);
        }
        await PersistAsync("The script's output", () => UploadLogsAsync(logs), deadline).ConfigureAwait(false);
        _manifest.Artifacts = _entries.Values.ToList();
        _manifest.Sealed = true;
        _manifest.Updated = _catalog.Clock.GetUtcNow();
        await PersistAsync("The sealed manifest", () => _catalog.WriteManifestAsync(_manifest, CancellationToken.None), deadline).ConfigureAwait(false);
        _record.Status = stopRequested ? GridStatus.Stopped : exitCode == 0 ? GridStatus.Succeeded : GridStatus.Failed;
        _record.Finished = _catalog.Clock.GetUtcNow();
        _record.Heartbeat = _record.Finished;
        await PersistAsync("The final status", WriteRecordAsync, deadline).ConfigureAwait(false);
        try { Directory.Delete(logs, recursive: true); } catch (IOException) { }
        return exitCode;
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

    /// <summary>A write that must happen: tried again with growing pauses until <paramref name="deadline"/>, then its error is thrown.</summary>
    private async Task PersistAsync(string what, Func<Task> work, DateTimeOffset deadline)
    {
        for (var wait = TimeSpan.FromSeconds(1); ; wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(30).Ticks)))
        {
            try
            {
                await work().ConfigureAwait(false);
                return;
            }
            catch (GridException ex) when (IsPassing(ex) && DateTimeOffset.UtcNow + wait < deadline)
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

    /// <summary>Every file under the roots, by artifact path.</summary>
    /// <summary>One file a rescan found: its artifact path, the root it is under, its size and time (-1 when it could not be read).</summary>
    private readonly record struct ScanEntry(string Path, int Root, long Length, long Ticks);

    /// <summary>
    /// Every file under the roots, by artifact path, with its size and time read as the folder is
    /// listed: no file object and no full path per file, since this runs over every file every second.
    /// </summary>
    private IEnumerable<ScanEntry> Scan()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        for (var r = 0; r < _roots.Count; r++)
        {
            var (root, prefix) = _roots[r];
            if (!Directory.Exists(root)) continue;
            var index = r;
            // Entries name their folder without a trailing separator; what follows the root (and its separator) is the relative folder.
            var trimmed = Path.TrimEndingDirectorySeparator(root);
            var skip = trimmed.Length + (Path.EndsInDirectorySeparator(trimmed) ? 0 : 1);
            var files = new System.IO.Enumeration.FileSystemEnumerable<ScanEntry>(root, (ref System.IO.Enumeration.FileSystemEntry e) =>
            {
                var dir = e.Directory.Length > skip ? e.Directory[skip..] : ReadOnlySpan<char>.Empty;
                var path = dir.IsEmpty ? string.Concat(prefix, e.FileName) : string.Concat(prefix, dir, "/", e.FileName);
                if (Path.DirectorySeparatorChar != '/') path = path.Replace(Path.DirectorySeparatorChar, '/');
                try { return new ScanEntry(path, index, e.Length, e.LastWriteTimeUtc.UtcTicks); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return new ScanEntry(path, index, -1, -1); }
            }, options)
            {
                ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !e.IsDirectory,
                // The store's own folder, and the module's working and temporary folders, are never artifacts.
                ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => ShouldWalk(e.ToFullPath()),
            };
            foreach (var f in files) yield return f;
        }
    }

    private bool ShouldWalk(string folder)
    {
        if (_folders.WhySkipped(folder) is not { } why) return true;
        if (_reportedSkipped.Add(folder)) Warning?.Invoke($"Skipped '{folder}': {why}.");
        return false;
    }

    /// <summary>The local path of a file a rescan found; built only for files the agent starts tracking.</summary>
    private string FullPathOf(ScanEntry e)
    {
        var (root, prefix) = _roots[e.Root];
        return Path.Join(root, e.Path.AsSpan(prefix.Length));
    }

    /// <summary>
    /// One pass: notice what changed, upload what has settled (everything changed, when final).
    /// A file that changes while it uploads is checked after the upload and sent again later.
    /// </summary>
    private async Task SyncAsync(bool final)
    {
        // A full rescan every pass: notifications only wake the loop sooner, so an overflow misses nothing.
        var now = _catalog.Clock.GetUtcNow();
        foreach (var e in Scan())
        {
            var path = e.Path;
            // A name whose bytes are not UTF-8 reads back with U+FFFD in it and cannot be opened by that name.
            if (path.Contains('\uFFFD') && !File.Exists(FullPathOf(e)))
            {
                if (_reportedUnstorable.Add(path))
                {
                    const string problem = "the file name is not valid UTF-8, so it cannot be read or stored by name; rename it";
                    _sync.Unstorable.Add($"{path}: {problem}");
                    Warning?.Invoke($"'{path}' cannot be stored as an artifact: {problem}.");
                }
                continue;
            }
            if (e.Length < 0) continue; // gone or unreadable since the folder was listed
            var ticks = e.Ticks;
            if (_before.TryGetValue(path, out var old) && old == (e.Length, ticks) && !_files.ContainsKey(path)) continue; // there before the run, unchanged
            if (!_files.TryGetValue(path, out var t)) _files[path] = t = new Tracked { FullPath = FullPathOf(e), Length = -1, Ticks = -1 };
            if (t.Length != e.Length || t.Ticks != ticks)
            {
                t.Length = e.Length;
                t.Ticks = ticks;
                t.SeenAt = now;
            }
        }

        long pendingBytes = 0;
        var pending = 0;
        var ready = new List<(string Path, Tracked File)>();
        // Every tracked file is looked at, but only the changed ones are sorted: no per-pass copy of a
        // 100,000-entry table (large-object garbage that only a full collection returns).
        foreach (var (path, t) in _files)
        {
            if (t.UploadedLength == t.Length && t.UploadedTicks == t.Ticks) continue;
            if (!final && now - t.SeenAt < _options.SettleTime) { pending++; pendingBytes += t.Length; continue; }
            var problem = GridNames.ArtifactPathProblem(path);
            if (problem is not null)
            {
                if (_reportedUnstorable.Add(path))
                {
                    _sync.Unstorable.Add($"{path}: {problem}");
                    Warning?.Invoke($"'{path}' cannot be stored as an artifact: {problem}.");
                }
                t.UploadedLength = t.Length;
                t.UploadedTicks = t.Ticks;
                continue;
            }
            ready.Add((path, t));
        }
        ready.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        // Settled files go up several at a time (large ones in parts, from the file itself).
        var failed = 0;
        long failedBytes = 0;
        await Parallel.ForEachAsync(ready, new ParallelOptions { MaxDegreeOfParallelism = UploadConcurrency }, async (f, _) =>
        {
            if (!await UploadAsync(f.Path, f.File).ConfigureAwait(false))
            {
                Interlocked.Increment(ref failed);
                Interlocked.Add(ref failedBytes, Math.Max(0, f.File.Length));
            }
        }).ConfigureAwait(false);
        pending += failed;
        pendingBytes += failedBytes;
        _sync.FilesPending = pending;
        _sync.BytesPending = pendingBytes;
        // The manifest is rewritten whole, so a large one is rewritten less often (one second per
        // 2,000 entries, at most 30 s apart): 100,000 entries are 25 MB of JSON. The final sync
        // leaves it to the sealed manifest written right after.
        var manifestInterval = TimeSpan.FromSeconds(Math.Clamp(_entries.Count / 2000.0, 1, 30));
        if (_manifestDirty && !final && _catalog.Clock.GetUtcNow() - _manifestWritten >= manifestInterval)
        {
            _manifest.Artifacts = _entries.Values.ToList();
            _manifest.Updated = _catalog.Clock.GetUtcNow();
            if (await TryAsync("The manifest", () => _catalog.WriteManifestAsync(_manifest, CancellationToken.None)).ConfigureAwait(false))
            {
                _manifestDirty = false;
                _manifestWritten = _catalog.Clock.GetUtcNow();
            }
            _manifest.Artifacts = new List<ManifestEntry>(); // the entries live in _entries; no second list between writes
        }
    }

    private void Wake()
    {
        try { _wake.Release(); }
        catch (SemaphoreFullException) { } // already awake
    }

    /// <summary>
    /// Uploads of one file in one pass: a file that changed while it went up is sent once more; a
    /// failed upload waits for the next pass. Each upload's requests are retried by the one request
    /// policy (<see cref="Transfer.Retry"/>), so a pass makes at most this many times its attempts.
    /// </summary>
    public const int MaxUploadsPerFilePerPass = 2;

    private async Task<bool> UploadAsync(string path, Tracked t)
    {
        for (var upload = 0; upload < MaxUploadsPerFilePerPass; upload++)
        {
            try
            {
                var before = new FileInfo(t.FullPath);
                if (!before.Exists) return true; // deleted since: what was stored stays stored
                var entry = await _catalog.PutArtifactFileAsync(_run, _experiment, path, t.FullPath, CancellationToken.None).ConfigureAwait(false);
                var after = new FileInfo(t.FullPath);
                if (!after.Exists || after.Length != before.Length || after.LastWriteTimeUtc != before.LastWriteTimeUtc || entry.Size != before.Length)
                {
                    // Changed while it went up: never publish a torn file; the next pass sends it again.
                    t.Length = after.Exists ? after.Length : -1;
                    t.Ticks = after.Exists ? after.LastWriteTimeUtc.Ticks : -1;
                    continue;
                }
                lock (_manifest)
                {
                    var previous = _entries.TryGetValue(path, out var p) ? p.Size : 0;
                    _entries[path] = entry;
                    _manifestDirty = true;
                    _sync.FilesSynced = _entries.Count;
                    _sync.BytesSynced += entry.Size - previous;
                    _sync.LastFile = path;
                    _sync.LastSynced = _catalog.Clock.GetUtcNow();
                }
                t.UploadedLength = before.Length;
                t.UploadedTicks = before.LastWriteTimeUtc.Ticks;
                return true;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or GridException)
            {
                // The request policy has already retried what could pass; the next pass tries again.
                Warning?.Invoke($"'{path}' was not synced yet: {ex.Message}");
                return false;
            }
        }
        return false; // still changing: the next pass sends it
    }

    private async Task HeartbeatAsync(string logs)
    {
        _record.Heartbeat = _catalog.Clock.GetUtcNow();
        _sync.AgentMemory = Process.GetCurrentProcess().WorkingSet64;
        await WriteRecordAsync().ConfigureAwait(false);
        await UploadLogsAsync(logs).ConfigureAwait(false);
    }

    private async Task UploadLogsAsync(string logs)
    {
        foreach (var stream in new[] { "stdout", "stderr" })
        {
            var file = Path.Combine(logs, stream + ".log");
            if (File.Exists(file)) await _catalog.Store.PutFileAsync(StoreLayout.LogKey(_run, _experiment, stream), file, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private Task WriteRecordAsync() => _catalog.WriteExperimentRecordAsync(_record, CancellationToken.None);

    private static string Quote(string a) => a.Length > 0 && !a.Any(char.IsWhiteSpace) && !a.Contains('"') ? a : "\"" + a.Replace("\"", "\\\"") + "\"";

    /// <summary>Change notifications for every root; an overflow only means the next rescan finds it.</summary>
    private sealed class WatcherSet : IDisposable
    {
        private readonly List<FileSystemWatcher> _watchers = new();
        public WatcherSet(IEnumerable<string> roots, Action changed)
        {
            foreach (var root in roots)
            {
                try
                {
                    var w = new FileSystemWatcher(root) { IncludeSubdirectories = true, InternalBufferSize = 64 * 1024 };
                    w.Changed += (_, _) => changed();
                    w.Created += (_, _) => changed();
                    w.Renamed += (_, _) => changed();
                    w.Error += (_, _) => changed();
                    w.EnableRaisingEvents = true;
                    _watchers.Add(w);
                }
                catch (Exception ex) when (ex is IOException or ArgumentException)
                {
                    // Too many watches (inotify limits): the periodic rescan still finds every file.
                }
            }
        }
        public void Dispose() { foreach (var w in _watchers) w.Dispose(); }
    }
}
