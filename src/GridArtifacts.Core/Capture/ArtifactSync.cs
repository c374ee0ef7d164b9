using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The capture agent's uploads: each pass sends the files of its <see cref="FolderWatch"/> that have
/// settled, several at a time, records each upload in the <see cref="ManifestJournal"/> (whose
/// segments go to the store while the pass goes on), and keeps <see cref="GridSyncState"/> (what is
/// synced, pending and unstorable) for the experiment's record. The final sync sends everything
/// changed, without settle time; the sealed manifest lists every file's latest upload.
/// </summary>
internal sealed class ArtifactSync
{
    private readonly GridCatalog _catalog;
    private readonly string _run;
    private readonly string _experiment;
    private readonly FolderWatch _watch;
    private readonly GridSyncState _sync;
    private readonly MetricsWatch _metrics;
    private readonly Action<string> _warn;
    /// <summary>Runs a write that may wait for a later pass (a store that is away only costs a warning).</summary>
    private readonly Func<string, Func<Task>, Task<bool>> _tryAsync;
    /// <summary>How long a file must stay unchanged before a pass (not the final sync) sends it.</summary>
    private readonly TimeSpan _settleTime;
    /// <summary>Guards what upload workers share: the sync state, the file table's slots, the unstorable list.</summary>
    private readonly object _syncGate = new();
    private readonly HashSet<string> _reportedUnstorable = new(StringComparer.Ordinal);
    private ManifestJournal? _journal;
    /// <summary>Files taken from the pending list per round of uploads.</summary>
    private const int UploadBatch = 4096;

    public ArtifactSync(GridCatalog catalog, string run, string experiment, FolderWatch watch, TimeSpan settleTime, GridSyncState sync, MetricsWatch metrics,
        Action<string> warn, Func<string, Func<Task>, Task<bool>> tryAsync)
    {
        _settleTime = settleTime;
        _catalog = catalog;
        _run = run;
        _experiment = experiment;
        _watch = watch;
        _sync = sync;
        _metrics = metrics;
        _warn = warn;
        _tryAsync = tryAsync;
    }

    /// <summary>The manifest's journal, in <paramref name="folder"/>; the caller disposes it at the end.</summary>
    public ManifestJournal OpenJournal(string folder) => _journal = new ManifestJournal(_catalog, _run, _experiment, folder);

    /// <summary>How many files could not be stored (each named in a warning once).</summary>
    public int UnstorableCount { get { lock (_syncGate) return _reportedUnstorable.Count; } }

    /// <summary>A file an earlier agent of this experiment stored (it was lost): counted as synced, and kept in the sealed manifest unless sent again.</summary>
    public void KeepEarlier(ManifestEntry entry)
    {
        var i = _watch.Table.FindOrAdd(entry.Path, 0, out _);
        ref var s = ref _watch.Table[i];
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
    public void ReportUnstorable(string path, string problem)
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
        _warn($"'{path}' cannot be stored as an artifact: {problem}.");
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

    /// <summary>Whether manifest entry number <paramref name="entry"/> is the latest of <paramref name="path"/> (-1: an earlier agent's).</summary>
    public bool IsLatest(string path, int entry)
    {
        var i = _watch.Table.Find(path);
        if (entry < 0) return i < 0 || _watch.Table[i].Entry < 0;
        return i >= 0 && _watch.Table[i].Entry == entry;
    }

    private bool _finalNoticed;

    /// <summary>
    /// The final sync's full rescan, ahead of the final sync (which then does not rescan): how many
    /// files it has to send. None: every file the script wrote is in the store already.
    /// </summary>
    public int NoticeFinal()
    {
        _watch.Notice(final: true, _watch.Table.Now);
        _finalNoticed = true;
        return _watch.Pending.Count;
    }

    /// <summary>
    /// One pass: notice what changed, upload what has settled (everything changed, when final).
    /// A file that changes while it uploads is checked after the upload and sent again later.
    /// </summary>
    /// <param name="final">The final sync: a full rescan, and no settle time.</param>
    /// <param name="cut">Cuts off the uploads in flight (a stop, a signal's budget): their files stay pending.</param>
    public async Task SyncAsync(bool final, CancellationToken cut)
    {
        var tick = _watch.Table.Now;
        // The final sync's rescan may have been done just before it (NoticeFinal): not twice.
        if (!(final && _finalNoticed)) _watch.Notice(final, tick);
        _finalNoticed = false;
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
            await _tryAsync("The manifest", () => journal.FlushAsync(journal.SuggestedInterval, IsLatest, CancellationToken.None)).ConfigureAwait(false);
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
        var candidates = _watch.Pending.ToArray();
        var batch = new List<(string Path, int Slot)>(UploadBatch);
        for (var next = 0; next < candidates.Length;)
        {
            batch.Clear();
            for (; next < candidates.Length && batch.Count < UploadBatch; next++)
            {
                var i = candidates[next];
                var s = _watch.Table[i];
                if (!final && FileTable.Elapsed(s.SeenAt, tick) < _settleTime) { pending++; pendingBytes += s.Length; continue; }
                var path = _watch.Table.PathOf(i);
                if (_catalog.Artifacts.ArtifactPathProblem(_run, _experiment, path) is { } problem)
                {
                    ReportUnstorable(path, problem);
                    _watch.Settle(i);
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
                        Interlocked.Add(ref failedBytes, Math.Max(0, _watch.Table[f.Slot].Length));
                        break;
                }
            }).ConfigureAwait(false);
            foreach (var i in uploaded) _watch.Settle(i);
        }
        return (pending + failed, pendingBytes + failedBytes);
    }

    /// <summary>Sends the manifest's entries on the journal's cadence until the pass's uploads are done.</summary>
    private async Task FlushWhileUploadingAsync(ManifestJournal journal, CancellationToken passDone)
    {
        while (true)
        {
            try { await Task.Delay(journal.SuggestedInterval, _catalog.Clock, passDone).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            await _tryAsync("The manifest", () => journal.FlushAsync(journal.SuggestedInterval, IsLatest, CancellationToken.None)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One upload of one file in one pass. It is read only if it may be (<see cref="ReadScope"/>), and
    /// only as far as its length when opened: a file that changed while it went up is recorded as it
    /// was sent (the manifest always tells what the store holds) and stays pending, so the next pass
    /// sends it again. A failed upload waits for the next pass; each of its requests is retried by the
    /// one request policy (<see cref="Transfer.Retry"/>).
    /// </summary>
    private enum UploadOutcome { Done, Changing, Failed, Skipped }

    private async Task<UploadOutcome> UploadAsync(string path, int slot, CancellationToken cut)
    {
        var fullPath = _watch.FullPathOf(_watch.Table[slot].Root, path);
        try
        {
            using var file = _watch.Scope.TryOpen(fullPath, out var skipped);
            if (file is null)
            {
                if (skipped is null) return UploadOutcome.Done; // deleted since: what was stored stays stored
                ReportUnstorable(path, skipped);
                return UploadOutcome.Skipped;
            }
            var entry = await _catalog.Artifacts.PutArtifactFileAsync(_run, _experiment, path, file, cut).ConfigureAwait(false);
            Unreport(path);
            var number = _journal!.Add(entry);
            _metrics.Noticed(path, fullPath, entry);
            var changed = file.ChangedSinceOpened(out var length, out var modified);
            lock (_syncGate)
            {
                ref var s = ref _watch.Table[slot];
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
                if (changed) s.SeenAt = _watch.Table.Now;
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
            _warn($"'{path}' was not synced yet: {ex.Message}");
            return UploadOutcome.Failed;
        }
    }

    /// <summary>
    /// Files in the working folder that were there before the script started, never changed, and so
    /// never stored (a folder of the user's, given to Invoke-GridExperiment): removing them would lose them.
    /// </summary>
    public int UnsentEarlierFiles()
    {
        var top = Path.TrimEndingDirectorySeparator(_watch.WorkingDirectory) + Path.DirectorySeparatorChar;
        var count = 0;
        for (var i = 0; i < _watch.Table.Count; i++)
        {
            ref var s = ref _watch.Table[i];
            // Pending ones, and ones that cannot be stored, are counted as such.
            if (s.Entry != -1 || (s.Flags & FileTable.SlotFlags.Dirty) != 0) continue;
            var path = _watch.Table.PathOf(i);
            if (_reportedUnstorable.Contains(path)) continue;
            var full = _watch.FullPathOf(s.Root, path);
            // Still there (File.Exists is true of a link that leads nowhere too), and inside the folder that would be removed.
            if (full.StartsWith(top, StringComparison.Ordinal) && File.Exists(full)) count++;
        }
        return count;
    }
}
