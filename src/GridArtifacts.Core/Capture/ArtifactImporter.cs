using System.Collections.Concurrent;
using System.IO.Enumeration;
using GridArtifacts.Core.Metrics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Capture;

/// <summary>What one import asks: the files (artifact path and local path), where they go, and what to record.</summary>
public sealed record ImportRequest
{
    /// <summary>The run; null for a new run under a generated name.</summary>
    public string? Run { get; init; }
    public required string Experiment { get; init; }
    public required IReadOnlyList<(string Path, string LocalPath)> Files { get; init; }
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public string? Command { get; init; }
    /// <summary>Tags put on the experiment once the import holds it.</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
    public int ThrottleLimit { get; init; } = TransferOptions.DefaultFilesInFlight;
    /// <summary>What may be read (a folder imported: nothing outside it, no special file); null: the files as named.</summary>
    public ReadScope? Scope { get; init; }
}

/// <summary>
/// Stores local files as the artifacts of one new experiment: the run is created when it is new,
/// the experiment is claimed as a capture agent claims one (an ended or live experiment is refused,
/// never rewritten), every file goes up with its SHA-256, and a file that fails is an error for
/// that file only: the manifest is sealed with every file that arrived, then the status is written.
/// </summary>
public sealed class ArtifactImporter
{
    private readonly GridCatalog _catalog;

    public ArtifactImporter(GridCatalog catalog) => _catalog = catalog;

    /// <summary>How often a long import renews its heartbeat, so it never reads as Lost while it goes.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The files under <paramref name="source"/> (a file or a folder), with paths relative to it. The
    /// module's own folders inside it (<see cref="ModuleFolders"/>) and links to folders are skipped and
    /// named to <paramref name="skipped"/>; a source inside the folder store is refused. For a folder,
    /// <paramref name="scope"/> is what the import may read (<see cref="ImportRequest.Scope"/>): nothing
    /// outside it, no special file; a file named itself is read as named.
    /// </summary>
    public static List<(string Path, string LocalPath)> ListFiles(string source, ModuleFolders folders, Action<string> skipped) => ListFiles(source, folders, skipped, out _);

    /// <inheritdoc cref="ListFiles(string, ModuleFolders, Action{string})"/>
    public static List<(string Path, string LocalPath)> ListFiles(string source, ModuleFolders folders, Action<string> skipped, out ReadScope? scope)
    {
        scope = null;
        if (folders.IsInStore(source))
        {
            throw new GridException(GridErrorKind.InvalidArgument, "SourceInStore",
                $"'{source}' is inside the store; its files are the store's own records and artifacts, not new ones. To copy a run, use Copy-GridRun.", source);
        }
        var files = new List<(string, string)>();
        if (File.Exists(source))
        {
            files.Add((Path.GetFileName(source), source));
            return files;
        }
        if (!Directory.Exists(source))
        {
            throw new GridException(GridErrorKind.NotFound, "SourceNotFound", $"'{source}' is neither a file nor a folder.", source);
        }
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(source));
        var within = scope = new ReadScope(new[] { root }, folders);
        var walked = new WalkedFolders();
        walked.FirstVisit(root);
        var walk = new FileSystemEnumerable<(string, string)>(root,
            (ref FileSystemEntry e) =>
            {
                var full = e.ToFullPath();
                return (Path.GetRelativePath(root, full).Replace('\\', '/'), full);
            },
            new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
        {
            ShouldIncludePredicate = (ref FileSystemEntry e) => !e.IsDirectory,
            ShouldRecursePredicate = (ref FileSystemEntry e) =>
            {
                var full = e.ToFullPath();
                if ((e.Attributes & FileAttributes.ReparsePoint) != 0)
                {
                    skipped($"Skipped '{full}': {within.FolderLinkProblem(full)}.");
                    return false;
                }
                if (folders.WhySkipped(full) is { } why)
                {
                    skipped($"Skipped '{full}': {why}.");
                    return false;
                }
                if (walked.FirstVisit(full)) return true;
                skipped($"Skipped '{full}': it is a folder already imported by another path (the same device and inode); no folder is read twice.");
                return false;
            },
        };
        files.AddRange(walk);
        return files;
    }

    /// <summary>
    /// Imports; per-file failures go to <paramref name="onError"/> and the rest is still stored. The metrics
    /// among the files (<see cref="MetricsReader"/>) go into the record; a metrics file that gives none is
    /// named to <paramref name="onWarning"/>. Returns the experiment as stored.
    /// </summary>
    public async Task<GridExperiment> ImportAsync(ImportRequest request, Action<GridException> onError, Action<int> filesDone, CancellationToken ct, Action<string>? onWarning = null)
    {
        var now = _catalog.Clock.GetUtcNow();
        var experiment = GridNames.CheckExperimentName(request.Experiment);
        var parameters = new Dictionary<string, string>(request.Parameters, StringComparer.Ordinal);
        RunRecord NewRun(string name) => new() { Name = name, Created = now, Command = request.Command, Parameters = new(parameters, StringComparer.Ordinal) };
        string run;
        if (request.Run is null)
        {
            run = await _catalog.Writer.CreateRunWithNewNameAsync(NewRun, ct).ConfigureAwait(false);
        }
        else
        {
            run = GridNames.CheckRunName(request.Run);
            // A run that exists takes a new experiment; one that does not is created (by whichever import comes first).
            await _catalog.Writer.TryCreateRunAsync(NewRun(run), ct).ConfigureAwait(false);
        }

        var sync = new GridSyncState();
        var record = await _catalog.Claims.ClaimExperimentAsync(run, experiment, _ => new ExperimentRecord
        {
            Run = run, Experiment = experiment, Status = GridStatus.Syncing, Created = now, Started = now, Heartbeat = now,
            Parameters = new(parameters, StringComparer.Ordinal), Command = request.Command, Agent = WriterId.New("import"), Sync = sync,
        }, takeQueued: false, mustExist: false, ct).ConfigureAwait(false);
        if (request.Tags.Count > 0) await _catalog.Writer.AddTagsAsync(run, experiment, request.Tags, ct).ConfigureAwait(false);

        var entries = new ConcurrentBag<ManifestEntry>();
        var failed = new ConcurrentBag<string>();
        var done = 0;
        using (var beat = new PeriodicHeartbeat(HeartbeatInterval, async () =>
        {
            record.Heartbeat = _catalog.Clock.GetUtcNow();
            sync.FilesSynced = entries.Count;
            await _catalog.Writer.WriteExperimentRecordAsync(record, CancellationToken.None).ConfigureAwait(false);
        }))
        {
            await Parallel.ForEachAsync(request.Files, new ParallelOptions { MaxDegreeOfParallelism = request.ThrottleLimit, CancellationToken = ct }, async (f, c) =>
            {
                try
                {
                    using var file = Open(request.Scope, f.LocalPath);
                    entries.Add(await _catalog.Artifacts.PutArtifactFileAsync(run, experiment, f.Path, file, c).ConfigureAwait(false));
                }
                catch (Exception ex) when (ex is GridException or IOException or UnauthorizedAccessException && !c.IsCancellationRequested)
                {
                    failed.Add(f.Path);
                    onError(ex as GridException ?? new GridException(GridErrorKind.WriteFailed, "ImportFileFailed",
                        $"'{f.LocalPath}' was not imported into {GridNames.ExperimentId(run, experiment)}: {ex.Message} The other files are imported.", f.LocalPath, ex));
                }
                filesDone(Interlocked.Increment(ref done));
            }).ConfigureAwait(false);
            await beat.StopAsync().ConfigureAwait(false);
        }

        // Every file that arrived is in the sealed manifest, whatever failed beside it; then the status.
        await _catalog.Manifests.WriteManifestAsync(new ManifestRecord
        {
            Run = run, Experiment = experiment, Sealed = true, Updated = _catalog.Clock.GetUtcNow(), Artifacts = entries.ToList(),
        }, CancellationToken.None).ConfigureAwait(false);
        sync.FilesSynced = entries.Count;
        sync.BytesSynced = entries.Sum(e => e.Size);
        sync.FilesPending = failed.Count;
        foreach (var path in failed.OrderBy(p => p, StringComparer.Ordinal)) sync.Unstorable.Add($"{path}: not imported (see the error of the import)");
        record.Metrics = ReadMetrics(request.Files, entries, request.Scope, onWarning ?? (_ => { }));
        record.Status = failed.IsEmpty ? GridStatus.Succeeded : GridStatus.Failed;
        record.ExitCode = failed.IsEmpty ? 0 : 1;
        record.Finished = record.Heartbeat = _catalog.Clock.GetUtcNow();
        await _catalog.Writer.WriteExperimentRecordAsync(record, CancellationToken.None).ConfigureAwait(false);
        return await _catalog.Runs.GetLabelledExperimentAsync(run, experiment, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The metrics of the files that arrived, read from their local copies (the stored ones are the same bytes).</summary>
    /// <summary>A file to import, opened as <paramref name="scope"/> allows; one it does not is an error for that file.</summary>
    private static LocalFile Open(ReadScope? scope, string localPath)
    {
        if (scope is null) return LocalFile.Open(localPath);
        return scope.TryOpen(localPath, out var skipped) ?? throw (skipped is null
            ? new GridException(GridErrorKind.NotFound, "SourceFileGone", $"'{localPath}' was not imported: it is gone since the folder was listed.", localPath)
            : new GridException(GridErrorKind.UnsafePath, "SourceFileNotRead", $"'{localPath}' was not imported: {skipped}. The other files are imported.", localPath));
    }

    private static MetricsRecord? ReadMetrics(IReadOnlyList<(string Path, string LocalPath)> files, IEnumerable<ManifestEntry> arrived, ReadScope? scope, Action<string> warning)
    {
        var local = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, localPath) in files)
        {
            if (MetricsReader.IsCsvCandidate(path) || MetricsReader.IsJsonCandidate(path)) local[path] = localPath;
        }
        if (local.Count == 0) return null;
        try
        {
            return MetricsReader.Read(arrived.Where(e => local.ContainsKey(e.Path)).Select(e => (e.Path, e.Modified)).ToList(), p => Open(scope, local[p]).ToStream(), warning);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            warning($"The metrics were not read: {ex.Message}");
            return null;
        }
    }
}

/// <summary>Runs a write every interval until stopped; a failed write waits for the next tick.</summary>
internal sealed class PeriodicHeartbeat : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public PeriodicHeartbeat(TimeSpan interval, Func<Task> beat)
    {
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                {
                    try { await beat().ConfigureAwait(false); }
                    catch (GridException) { /* the next tick tries again */ }
                }
            }
            catch (OperationCanceledException) { }
        });
    }

    public async Task StopAsync()
    {
        _stop.Cancel();
        await _loop.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
