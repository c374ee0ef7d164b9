using System.Globalization;
using System.Text;
using System.Text.Json;
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
/// </list>
/// Times are UTC ticks in hex, counts in hex, <c>_</c> for none. Run names are <c>[a-z0-9-]</c>, so
/// <c>~</c> ends the run's part and no run's keys are a prefix of another's.
/// </summary>
public static class CatalogIndex
{
    public const char Separator = '~';
    public const string RunTag = "run";
    private const string None = "_";
    /// <summary>Keeps a run key's last segment within a file name's 255 bytes on any folder store.</summary>
    public const int MaxSummaryLength = 160;

    /// <summary>Every index key of one run (and of no other run).</summary>
    public static string RunIndexPrefix(string run) => $"{StoreLayout.RunsPrefix}{run}{Separator}";

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

    private static readonly JsonSerializerOptions SummaryJson = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static string Hex(long v) => v.ToString("x", CultureInfo.InvariantCulture);
    private static string Time(DateTimeOffset? t) => t is { } v ? Hex(v.UtcTicks) : None;

    /// <summary>A run's index key, read back.</summary>
    public sealed record RunEntry(string Run, DateTimeOffset Created, bool HasSummary, string? Command, IReadOnlyDictionary<string, string> Parameters, string Key);

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
        var name = key.AsSpan(StoreLayout.RunsPrefix.Length);
        if (name.IndexOf('/') >= 0) return null;
        var parts = name.ToString().Split(Separator);
        if (parts.Length < 2 || !GridNames.IsValidRunName(parts[0])) return null;
        try
        {
            if (parts[1] == RunTag && parts.Length == 4)
            {
                var created = Ticks(parts[2]) ?? throw new FormatException();
                var (has, command, parameters) = DecodeSummary(parts[3]);
                return new RunEntry(parts[0], created, has, command, parameters, key);
            }
            if (parts.Length == 10 && GridNames.IsValidExperimentName(parts[1]) && Enum.TryParse<GridStatus>(parts[3], out var status) && status != GridStatus.Lost)
            {
                return new ExperimentEntry(parts[0], parts[1], long.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture), status,
                    parts[4] == None ? null : int.Parse(parts[4], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
                    Ticks(parts[5]), Ticks(parts[6]), Ticks(parts[7]),
                    long.Parse(parts[8], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    long.Parse(parts[9], NumberStyles.HexNumber, CultureInfo.InvariantCulture), key);
            }
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or JsonException or ArgumentException)
        {
            return null; // not one of ours
        }
        return null;
    }

    private static DateTimeOffset? Ticks(string s) =>
        s == None ? null : new DateTimeOffset(long.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture), TimeSpan.Zero);

    private static readonly IReadOnlyDictionary<string, string> NoParameters = new Dictionary<string, string>();

    private static (bool, string?, IReadOnlyDictionary<string, string>) DecodeSummary(string s)
    {
        if (s == None) return (false, null, NoParameters);
        var b64 = s.Replace('-', '+').Replace('_', '/');
        b64 += new string('=', (4 - b64.Length % 4) % 4);
        var summary = JsonSerializer.Deserialize<Summary>(Convert.FromBase64String(b64), SummaryJson) ?? throw new FormatException();
        return (true, summary.C, summary.P ?? new Dictionary<string, string>());
    }
}
