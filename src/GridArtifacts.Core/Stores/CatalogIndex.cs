using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// The catalog's index (schema 2): small, empty objects beside the run folders whose keys carry
/// what a listing shows, so one listing of <c>runs/</c> (1,000 keys a page) gives every run with its
/// status, times and experiments, without reading a record.
/// <list type="bullet">
/// <item><c>runs/&lt;run&gt;~run~&lt;created&gt;~&lt;summary&gt;</c>: written once, right after the run's record is
/// created. The summary is the command and parameters as base64url JSON when that fits in
/// <see cref="MaxSummaryLength"/> characters, else <c>_</c> (then the record is read).</item>
/// <item><c>runs/&lt;run&gt;~&lt;exp&gt;~&lt;seq&gt;~&lt;status&gt;~&lt;exit&gt;~&lt;started&gt;~&lt;finished&gt;~&lt;heartbeat&gt;~&lt;files&gt;~&lt;bytes&gt;</c>:
/// written by the experiment's one writer after each write of its record, a new key with the next
/// sequence number, then the older ones deleted. A reader that sees two takes the highest.</item>
/// <item><c>runs/&lt;run&gt;~protected</c>: present while the run is protected (Protect-GridRun); nothing removes
/// the run or its experiments while it is there.</item>
/// <item><c>runs/&lt;run&gt;~tag~&lt;tag&gt;</c> and <c>runs/&lt;run&gt;~&lt;exp&gt;~tag~&lt;tag&gt;</c>: one empty object per tag on the run,
/// or on one experiment. One key per tag: two sessions adding tags never overwrite each other, and a
/// tag is removed by deleting its key by name.</item>
/// <item><c>runs/&lt;run&gt;~job~&lt;scheduler&gt;~&lt;cluster&gt;~&lt;job id&gt;</c>: the cluster job that runs the run's
/// experiments (Start-GridRun -Scheduler Slurm), written once the scheduler has answered; the
/// cluster is <c>_</c> when the scheduler did not name one. 0.3.0 and earlier pass it over.</item>
/// </list>
/// Times are UTC ticks in hex, counts in hex, <c>_</c> for none. Run names are <c>[a-z0-9-]</c>, so
/// <c>~</c> ends the run's part and no run's keys are a prefix of another's.
/// </summary>
/// <summary>The cluster job that runs a run's experiments.</summary>
public sealed record RunJob(GridScheduler Scheduler, string? Cluster, string Id);

public static partial class CatalogIndex
{
    public const char Separator = '~';
    public const string RunTag = "run";
    public const string ProtectedTag = "protected";
    public const string TagField = "tag";
    public const string JobField = "job";
    private const string None = "_";
    /// <summary>Keeps a run key's last segment within a file name's 255 bytes on any folder store.</summary>
    public const int MaxSummaryLength = 160;

    /// <summary>Every index key of one run (and of no other run).</summary>
    public static string RunIndexPrefix(string run) => $"{StoreLayout.RunsPrefix}{run}{Separator}";

    /// <summary>The key that marks a run protected.</summary>
    public static string ProtectedKey(string run) => $"{RunIndexPrefix(run)}{ProtectedTag}";

    /// <summary>The key of one of a run's own tags.</summary>
    public static string RunTagKey(string run, string tag) => $"{RunIndexPrefix(run)}{TagField}{Separator}{tag}";

    /// <summary>The key of one of an experiment's own tags.</summary>
    public static string ExperimentTagKey(string run, string experiment, string tag) => $"{ExperimentIndexPrefix(run, experiment)}{TagField}{Separator}{tag}";

    /// <summary>The key that names the cluster job of a run (<see cref="IsValidJobPart"/> for each part; a null cluster is <c>_</c>).</summary>
    public static string JobKey(string run, GridScheduler scheduler, string? cluster, string jobId)
    {
        var s = scheduler.ToString().ToLowerInvariant();
        var c = cluster ?? None;
        if (scheduler == GridScheduler.Local || !IsValidJobPart(c) || !IsValidJobPart(jobId))
            throw new ArgumentException($"Not a job to record: {scheduler} '{cluster}' '{jobId}'.");
        return $"{RunIndexPrefix(run)}{JobField}{Separator}{s}{Separator}{c}{Separator}{jobId}";
    }

    /// <summary>A job id or cluster name as a key holds it: 1 to 64 of <c>a-z A-Z 0-9 . _ -</c> (Slurm's ids are digits).</summary>
    public static bool IsValidJobPart(ReadOnlySpan<char> part)
    {
        if (part.IsEmpty || part.Length > 64) return false;
        foreach (var ch in part)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-')) return false;
        return true;
    }

    /// <summary>Every index key of one experiment.</summary>
    public static string ExperimentIndexPrefix(string run, string experiment) => $"{RunIndexPrefix(run)}{experiment}{Separator}";

    public static string RunKey(RunRecord record)
    {
        var summary = EncodeSummary(record.Command, record.Parameters) ?? None;
        return $"{RunIndexPrefix(record.Name)}{RunTag}{Separator}{Hex(record.Created.UtcTicks)}{Separator}{summary}";
    }

    public static string ExperimentKey(ExperimentRecord r, long sequence) =>
        string.Join(Separator,
            RunIndexPrefix(r.Run) + r.Experiment,
            sequence.ToString("x8", CultureInfo.InvariantCulture),
            r.Status.ToString(),
            r.ExitCode is { } exit ? exit.ToString(CultureInfo.InvariantCulture) : None,
            Time(r.Started), Time(r.Finished), Time(r.Heartbeat),
            Hex(r.Sync?.FilesSynced ?? 0), Hex(r.Sync?.BytesSynced ?? 0));

    /// <summary>The summary segment, or null when the command and parameters do not fit in a key.</summary>
    public static string? EncodeSummary(string? command, IReadOnlyDictionary<string, string> parameters)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new Summary { C = command, P = parameters.Count == 0 ? null : new Dictionary<string, string>(parameters) }, SummaryJson);
        // base64url grows by a third: skip the encoding when it cannot fit.
        if ((json.Length + 2) / 3 * 4 > MaxSummaryLength) return null;
        return Convert.ToBase64String(json).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private sealed class Summary
    {
        public string? C { get; set; }
        public Dictionary<string, string>? P { get; set; }
    }

    /// <summary>The summary's JSON: camelCase, nulls left out, generated at build time (no reflection).</summary>
    [JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
    [JsonSerializable(typeof(Summary))]
    private sealed partial class SummaryJsonContext : JsonSerializerContext;

    /// <summary>The summary with its escaping: only what JSON must escape, as every release wrote it (the attribute cannot say so).</summary>
    private static readonly JsonTypeInfo<Summary> SummaryJson = (JsonTypeInfo<Summary>)new JsonSerializerOptions(SummaryJsonContext.Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    }.GetTypeInfo(typeof(Summary));

    private static string Hex(long v) => v.ToString("x", CultureInfo.InvariantCulture);
    private static string Time(DateTimeOffset? t) => t is { } v ? Hex(v.UtcTicks) : None;

    /// <summary>A run's index key, read back: its summary is the encoded command and parameters, or null when they did not fit.</summary>
    public sealed record RunEntry(string Run, DateTimeOffset Created, string? Summary, string Key);

    /// <summary>An experiment's index key, read back.</summary>
    public sealed record ExperimentEntry(string Run, string Experiment, long Sequence, GridStatus Status, int? ExitCode,
        DateTimeOffset? Started, DateTimeOffset? Finished, DateTimeOffset? Heartbeat, long Files, long Bytes, string Key);

    /// <summary>
    /// Reads a key of the index: a <see cref="RunEntry"/>, an <see cref="ExperimentEntry"/>, or null
    /// for any other key (a run folder, or something this version does not know, which is passed over).
    /// </summary>
    public static object? Parse(string key)
    {
        if (!key.StartsWith(StoreLayout.RunsPrefix, StringComparison.Ordinal)) return null;
        var k = ParseName(key.AsSpan(StoreLayout.RunsPrefix.Length));
        return k.Kind switch
        {
            KeyKind.Run => new RunEntry(k.Run.ToString(), k.Created, k.Summary.IsEmpty ? null : k.Summary.ToString(), key),
            KeyKind.Experiment => new ExperimentEntry(k.Run.ToString(), k.Experiment.ToString(), k.Sequence, k.Status, k.ExitCode,
                k.Started, k.Finished, k.Heartbeat, k.Files, k.Bytes, key),
            KeyKind.Job => new JobEntry(k.Run.ToString(), new RunJob(k.Scheduler, k.Cluster.IsEmpty ? null : k.Cluster.ToString(), k.JobId.ToString()), key),
            KeyKind.RunTag or KeyKind.ExperimentTag => new TagEntry(k.Run.ToString(), k.Kind == KeyKind.RunTag ? null : k.Experiment.ToString(), k.Tag.ToString(), key),
            _ => null,
        };
    }

    /// <summary>A job key read back.</summary>
    public sealed record JobEntry(string Run, RunJob Job, string Key);

    /// <summary>A tag's key read back: on the run, or on one of its experiments.</summary>
    public sealed record TagEntry(string Run, string? Experiment, string Tag, string Key);

    public enum KeyKind { None, Run, Experiment, Protected, RunTag, ExperimentTag, Job }

    /// <summary>An index key read in place: its fields, the names as slices of the key.</summary>
    public ref struct ParsedName
    {
        public KeyKind Kind;
        public ReadOnlySpan<char> Run;
        /// <summary>A run key's created time and its summary (empty when the command did not fit).</summary>
        public DateTimeOffset Created;
        public ReadOnlySpan<char> Summary;
        /// <summary>An experiment key's fields.</summary>
        public ReadOnlySpan<char> Experiment;
        public long Sequence;
        public GridStatus Status;
        public int? ExitCode;
        public DateTimeOffset? Started, Finished, Heartbeat;
        public long Files, Bytes;
        /// <summary>A tag key's tag (and, for an experiment's, its <see cref="Experiment"/>).</summary>
        public ReadOnlySpan<char> Tag;
        /// <summary>A job key's scheduler, cluster (empty for none) and job id.</summary>
        public GridScheduler Scheduler;
        public ReadOnlySpan<char> Cluster, JobId;
    }

    /// <summary>
    /// Reads the part of a key after <c>runs/</c> in place: a listing reads one key per run and
    /// experiment, so nothing is allocated here. Kind is None for anything that is not an index key.
    /// </summary>
    // Compiled optimized at once: a listing calls it for every key, from its first call.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static ParsedName ParseName(ReadOnlySpan<char> name)
    {
        var k = new ParsedName();
        if (name.IndexOf('/') >= 0) return k;
        Span<Range> fields = stackalloc Range[11];
        var count = name.Split(fields, Separator);
        if (count < 2) return k;
        var run = name[fields[0]];
        var second = name[fields[1]];
        if (!GridNames.IsValidRunName(run)) return k;
        if (count == 2 && second.SequenceEqual(ProtectedTag))
        {
            k.Run = run;
            k.Kind = KeyKind.Protected;
            return k;
        }
        if (count == 4 && second.SequenceEqual(RunTag))
        {
            var summary = name[fields[3]];
            if (!TryTime(name[fields[2]], out var created) || created is null || summary.IsEmpty) return k;
            k.Run = run;
            k.Created = created.Value;
            k.Summary = summary.SequenceEqual(None) ? ReadOnlySpan<char>.Empty : summary;
            k.Kind = KeyKind.Run;
            return k;
        }
        if (count == 5 && second.SequenceEqual(JobField)
            && Enum.TryParse<GridScheduler>(name[fields[2]], ignoreCase: true, out var scheduler) && scheduler != GridScheduler.Local && Enum.IsDefined(scheduler)
            && IsValidJobPart(name[fields[3]]) && IsValidJobPart(name[fields[4]]))
        {
            k.Run = run;
            k.Scheduler = scheduler;
            k.Cluster = name[fields[3]].SequenceEqual(None) ? ReadOnlySpan<char>.Empty : name[fields[3]];
            k.JobId = name[fields[4]];
            k.Kind = KeyKind.Job;
            return k;
        }
        // Tags: a run key has "run" second and an experiment key 10 fields, so neither reads as one.
        if (count == 3 && second.SequenceEqual(TagField) && GridNames.IsValidTag(name[fields[2]]))
        {
            k.Run = run;
            k.Tag = name[fields[2]];
            k.Kind = KeyKind.RunTag;
            return k;
        }
        if (count == 4 && name[fields[2]].SequenceEqual(TagField) && GridNames.IsValidExperimentName(second) && GridNames.IsValidTag(name[fields[3]]))
        {
            k.Run = run;
            k.Experiment = second;
            k.Tag = name[fields[3]];
            k.Kind = KeyKind.ExperimentTag;
            return k;
        }
        if (count != 10 || !GridNames.IsValidExperimentName(second)
            || !TryHex(name[fields[2]], out var sequence)
            || name[fields[3]] is not [>= 'A' and <= 'Z', ..] || !Enum.TryParse<GridStatus>(name[fields[3]], out var status) || status == GridStatus.Lost || !Enum.IsDefined(status)
            || !TryTime(name[fields[5]], out var started) || !TryTime(name[fields[6]], out var finished) || !TryTime(name[fields[7]], out var heartbeat)
            || !TryHex(name[fields[8]], out var files) || !TryHex(name[fields[9]], out var bytes))
            return k;
        var exitText = name[fields[4]];
        if (!exitText.SequenceEqual(None))
        {
            if (!int.TryParse(exitText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exit)) return k;
            k.ExitCode = exit;
        }
        k.Run = run;
        k.Experiment = second;
        k.Sequence = sequence;
        k.Status = status;
        k.Started = started;
        k.Finished = finished;
        k.Heartbeat = heartbeat;
        k.Files = files;
        k.Bytes = bytes;
        k.Kind = KeyKind.Experiment;
        return k;
    }

    private static bool TryHex(ReadOnlySpan<char> s, out long value) =>
        long.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && value >= 0;

    private static bool TryTime(ReadOnlySpan<char> s, out DateTimeOffset? time)
    {
        time = null;
        if (s.SequenceEqual(None)) return true;
        if (!TryHex(s, out var ticks) || ticks > DateTimeOffset.MaxValue.UtcTicks) return false;
        time = new DateTimeOffset(ticks, TimeSpan.Zero);
        return true;
    }

    private static readonly IReadOnlyDictionary<string, string> NoParameters = new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    /// <summary>The command and parameters a run key's summary carries.</summary>
    /// <exception cref="FormatException">The summary is not one this version wrote.</exception>
    public static (string? Command, IReadOnlyDictionary<string, string> Parameters) DecodeSummary(string s)
    {
        try
        {
            var b64 = s.Replace('-', '+').Replace('_', '/');
            b64 += new string('=', (4 - b64.Length % 4) % 4);
            var summary = JsonSerializer.Deserialize(Convert.FromBase64String(b64), SummaryJson) ?? throw new FormatException();
            return (summary.C, summary.P is { Count: > 0 } p ? new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(p) : NoParameters);
        }
        catch (JsonException ex)
        {
            throw new FormatException(ex.Message, ex);
        }
    }
}
