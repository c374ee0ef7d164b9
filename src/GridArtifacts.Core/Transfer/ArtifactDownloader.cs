using System.Security.Cryptography;
using GridArtifacts.Model;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Transfer;

/// <summary>One artifact and where it goes.</summary>
public sealed record SaveItem(GridArtifact Artifact, string LocalPath);

/// <summary>Running totals, safe to read from another thread while a batch goes.</summary>
public sealed class TransferProgress
{
    private long _filesDone, _bytesDone;
    public TransferProgress(int filesTotal, long bytesTotal)
    {
        FilesTotal = filesTotal;
        BytesTotal = bytesTotal;
    }
    public int FilesTotal { get; }
    public long BytesTotal { get; }
    public long FilesDone => Interlocked.Read(ref _filesDone);
    public long BytesDone => Interlocked.Read(ref _bytesDone);
    internal void AddBytes(long n) => Interlocked.Add(ref _bytesDone, n);
    internal void FileDone() => Interlocked.Increment(ref _filesDone);
}

/// <summary>
/// Downloads a batch of artifacts: a bounded number at once, each to <c>&lt;name&gt;.part</c>, hashed as it
/// is written, checked against the SHA-256 the store recorded, then renamed into place. A failed or
/// cancelled artifact never leaves a file at its final path; a file already there with the same
/// content is skipped.
/// </summary>
public sealed class ArtifactDownloader
{
    public const string PartSuffix = ".part";
    private const int BufferSize = 1 << 18;

    public ArtifactDownloader(Func<string, GridCatalog> openStore) => _openStore = openStore;

    private readonly Func<string, GridCatalog> _openStore;

    public async Task RunAsync(IReadOnlyList<SaveItem> items, bool force, int throttleLimit, TransferProgress progress,
        Action<GridSaveResult> onDone, Action<GridException> onError, CancellationToken ct)
    {
        await Parallel.ForEachAsync(items,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, throttleLimit), CancellationToken = ct },
            async (item, c) =>
            {
                try
                {
                    onDone(await SaveOneAsync(item, force, progress, c).ConfigureAwait(false));
                }
                catch (GridException ex)
                {
                    onError(ex);
                }
                catch (IOException ex)
                {
                    onError(new GridException(GridErrorKind.WriteFailed,
                        FileSystemStore.IsDiskFull(ex) ? "DestinationDiskFull" : "SaveFailed",
                        FileSystemStore.IsDiskFull(ex)
                            ? $"The disk is full; '{item.LocalPath}' was not written. Free space and run the command again; finished files are kept and skipped."
                            : $"Could not save '{item.Artifact}' to '{item.LocalPath}': {ex.Message}",
                        item.Artifact, ex));
                }
                catch (UnauthorizedAccessException ex)
                {
                    onError(new GridException(GridErrorKind.AccessDenied, "SaveAccessDenied",
                        $"Could not write '{item.LocalPath}': {ex.Message}", item.Artifact, ex));
                }
                finally
                {
                    progress.FileDone();
                }
            }).ConfigureAwait(false);
    }

    private async Task<GridSaveResult> SaveOneAsync(SaveItem item, bool force, TransferProgress progress, CancellationToken ct)
    {
        var artifact = item.Artifact;
        var existed = File.Exists(item.LocalPath);
        if (existed && !force && artifact.Sha256 is not null && new FileInfo(item.LocalPath).Length == artifact.Size
            && await GridCatalog.HashFileAsync(item.LocalPath, ct).ConfigureAwait(false) == artifact.Sha256)
        {
            progress.AddBytes(artifact.Size);
            return new GridSaveResult(artifact, item.LocalPath, GridSaveAction.Skipped) { Sha256 = artifact.Sha256 };
        }

        Directory.CreateDirectory(Path.GetDirectoryName(item.LocalPath)!);
        var part = item.LocalPath + PartSuffix;
        string sha;
        long written = 0;
        try
        {
            var catalog = _openStore(artifact.Store);
            await using (var source = await catalog.OpenArtifactAsync(artifact, ct).ConfigureAwait(false))
            await using (var target = new FileStream(part, FileMode.Create, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[BufferSize];
                int n;
                while ((n = await source.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    await target.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    written += n;
                    progress.AddBytes(n);
                }
                sha = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
            }
            if (written != artifact.Size)
            {
                throw new GridException(GridErrorKind.IntegrityFailure, "SizeMismatch",
                    $"'{artifact}' arrived with {written} bytes but the store lists {artifact.Size}; nothing was written to '{item.LocalPath}'. Run the command again.", artifact);
            }
            if (artifact.Sha256 is not null && sha != artifact.Sha256)
            {
                throw new GridException(GridErrorKind.IntegrityFailure, "HashMismatch",
                    $"'{artifact}' arrived with SHA-256 {sha} but the store recorded {artifact.Sha256}; nothing was written to '{item.LocalPath}'.", artifact);
            }
            File.SetLastWriteTimeUtc(part, artifact.LastModified.UtcDateTime);
            File.Move(part, item.LocalPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(part)) File.Delete(part);
        }
        return new GridSaveResult(artifact, item.LocalPath, existed ? GridSaveAction.Overwritten : GridSaveAction.Downloaded) { Sha256 = sha };
    }
}
