using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>The store contract's keys (docs/store-layout.md): the same in a folder and in a bucket.</summary>
public static class StoreLayout
{
    /// <summary>
    /// The schema this version writes: 2 (index keys beside the run folders, manifests in segments).
    /// Schema-1 records (0.1.0) are read as they are; 0.1.0 refuses records of schema 2.
    /// </summary>
    public const int SchemaVersion = 2;

    /// <summary>
    /// The most bytes a record read whole may have (run.json, experiment.json, a claim, a stop request,
    /// an upload's journal record): 4 MiB, a thousand times what the module writes. A larger object is
    /// a damaged record, found without reading more than this. Manifests and their segments are read
    /// as streams, entry by entry, and have no such bound (docs/store-layout.md).
    /// </summary>
    public const int MaxRecordBytes = 4 << 20;
    public const string RunsPrefix = "runs/";
    public const string RunRecordName = "run.json";
    public const string ExperimentRecordName = "experiment.json";
    public const string ManifestName = "manifest.json";
    public const string ArtifactsFolder = "artifacts";
    /// <summary>Beside a record that is created once (run.json, a new experiment.json): the creators' claims, on a store that cannot create exclusively.</summary>
    public const string ClaimsFolder = "claims";

    /// <summary>
    /// The claim of an experiment record that exists (queued, or Lost) on a store that creates
    /// exclusively: <c>claims/over-&lt;hash&gt;</c> beside the record, named by the SHA-256 of the record
    /// as the claimant read it, so every claimant of one version of the record creates the same key and
    /// the store lets exactly one create it. Earlier releases pass the <c>claims/</c> folder over.
    /// </summary>
    public static string TakeoverClaimKey(string run, string exp, ReadOnlySpan<byte> recordAsRead) =>
        $"{ExperimentPrefix(run, exp)}{ClaimsFolder}/over-{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(recordAsRead))[..32].ToLowerInvariant()}";

    public static string RunPrefix(string run) => $"{RunsPrefix}{run}/";
    public static string RunRecordKey(string run) => $"{RunPrefix(run)}{RunRecordName}";
    public static string ExperimentPrefix(string run, string exp) => $"{RunPrefix(run)}{exp}/";
    public static string ExperimentRecordKey(string run, string exp) => $"{ExperimentPrefix(run, exp)}{ExperimentRecordName}";
    public static string ManifestKey(string run, string exp) => $"{ExperimentPrefix(run, exp)}{ManifestName}";
    /// <summary>
    /// Schema 2: while an experiment runs, each pass that uploaded writes what it uploaded as one
    /// segment, <c>manifest/&lt;seq&gt;.jsonl</c> (one entry per line); the sealed manifest.json replaces them at the end.
    /// </summary>
    public static string ManifestSegmentsPrefix(string run, string exp) => $"{ExperimentPrefix(run, exp)}manifest/";
    public static string ManifestSegmentKey(string run, string exp, long sequence) =>
        $"{ManifestSegmentsPrefix(run, exp)}{sequence.ToString("x8", System.Globalization.CultureInfo.InvariantCulture)}.jsonl";

    /// <summary>The sequence number of a segment key, or -1 for any other key.</summary>
    public static long ManifestSegmentSequence(string key)
    {
        var slash = key.LastIndexOf('/');
        var name = key.AsSpan(slash + 1);
        return name.Length == 14 && name.EndsWith(".jsonl", StringComparison.Ordinal)
            && long.TryParse(name[..8], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var seq) ? seq : -1;
    }
    public static string ArtifactsPrefix(string run, string exp) => $"{ExperimentPrefix(run, exp)}{ArtifactsFolder}/";
    public static string ArtifactKey(string run, string exp, string path) => ArtifactsPrefix(run, exp) + path;
    /// <summary>The script's output, kept with the experiment: <c>logs/stdout.log</c> and <c>logs/stderr.log</c>.</summary>
    public static string LogKey(string run, string exp, string stream) => $"{ExperimentPrefix(run, exp)}logs/{stream}.log";
    /// <summary>Written by Stop-GridRun; the experiment's agent stops its script when it sees it.</summary>
    public static string StopRequestKey(string run, string exp) => $"{ExperimentPrefix(run, exp)}stop-request";
    /// <summary>Where the multipart uploads in flight for an experiment's artifacts are recorded.</summary>
    public static string UploadsPrefix(string run, string exp) => $"{ExperimentPrefix(run, exp)}uploads/";

    /// <summary>
    /// The journal key of one multipart upload of <paramref name="key"/>: under its experiment's
    /// <c>uploads/</c> for an artifact, else under the root's <c>uploads/</c>. The name is a hash of the
    /// upload id (ids may hold any character); the record inside holds the id itself.
    /// </summary>
    public static string UploadJournalKey(string key, string uploadId)
    {
        var name = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(uploadId)))[..32].ToLowerInvariant() + ".json";
        var parts = key.Split('/', 5);
        if (parts.Length == 5 && parts[0] + "/" == RunsPrefix && parts[3] == ArtifactsFolder) return UploadsPrefix(parts[1], parts[2]) + name;
        return "uploads/" + name;
    }
}
