using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using GridArtifacts.Core.Sharing;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The JSON the engine writes through its source-generated contexts is, byte for byte, what the
/// reflection-based serializer of earlier releases wrote for the same object with the same options:
/// stores written before read as they did, and what is written now reads in earlier releases.
/// </summary>
public sealed class SourceGeneratedJsonTests
{
    /// <summary>The records' options as releases up to 0.5.0 built them (reflection, the non-generic enum converter).</summary>
    internal static readonly JsonSerializerOptions EarlierRecords = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    private static readonly JsonSerializerOptions EarlierCompact = new(EarlierRecords) { WriteIndented = false };

    private const string Unicode = "naïve-日本語-🚀-ß-\u00e9-\u0301-<tag>&'\"\\-\t-\u2028-\u007f-\u0001";

    /// <summary>What fits in a run key's summary: kept unescaped there (the relaxed encoder), but for what JSON must escape.</summary>
    private const string ShortUnicode = "日本-🚀-é<&>'\"\\\t";

    private static readonly DateTimeOffset When = new(2026, 3, 14, 15, 9, 26, 535, TimeSpan.Zero);

    public static TheoryData<string, object> Records() => new()
    {
        { "run, empty", new RunRecord() },
        { "run, full", new RunRecord { Name = "my-run", Created = When, Command = "python train.py --lr 0.1", Parameters = { ["lr"] = "0.1", [Unicode] = Unicode, ["empty"] = "" }, Claim = "c-1" } },
        { "run, unicode command, offset time", new RunRecord { Name = "r", Created = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.FromHours(-7)).AddTicks(1234567), Command = Unicode } },
        { "experiment, empty", new ExperimentRecord() },
        { "experiment, nulls", new ExperimentRecord { Run = "r", Experiment = "exp0", Status = GridStatus.Queued, Created = When } },
        { "experiment, full", new ExperimentRecord
            {
                Run = "r", Experiment = "exp12", Status = GridStatus.Failed, ExitCode = -9, Signal = "SIGTERM", Created = When,
                Started = When.AddSeconds(1), Finished = When.AddHours(1), Heartbeat = When.AddMinutes(59),
                Parameters = { ["seed"] = "1", [Unicode] = "x" }, Command = "sh -c 'echo " + Unicode + "'",
                Sync = new GridSyncState { FilesSynced = 3, BytesSynced = 1L << 40, FilesPending = 1, BytesPending = 7, LastFile = Unicode, LastSynced = When, AgentMemory = 123456789, Unstorable = { "bad\u0001name", Unicode } },
                Agent = "host:42:abc", IndexSequence = 17,
                Metrics = new MetricsRecord { Source = "logs/metrics.csv", Rows = 1000, Values = { ["loss"] = 0.1, ["acc"] = 1d / 3, ["big"] = 1e300, ["tiny"] = 5e-324, ["neg"] = -0.0, ["int"] = 42, [Unicode] = 2.5 }, Problem = Unicode },
                Reason = "the task ended", WorkingDirectory = "/tmp/" + Unicode, IndexKey = "not stored",
            } },
        { "experiment, empty collections", new ExperimentRecord { Status = GridStatus.Succeeded, Sync = new GridSyncState(), Metrics = new MetricsRecord() } },
        { "manifest, empty", new ManifestRecord() },
        { "manifest, entries", new ManifestRecord
            {
                Run = "r", Experiment = "exp0", Sealed = true, Updated = When, Through = 5,
                Artifacts =
                {
                    new ManifestEntry { Path = "a.txt", Size = 3, Sha256 = new string('a', 64), Modified = When },
                    new ManifestEntry { Path = "d/" + Unicode + ".bin", Size = long.MaxValue, Sha256 = "", Modified = DateTimeOffset.MinValue },
                },
            } },
        { "entry", new ManifestEntry { Path = Unicode, Size = 0, Sha256 = "00", Modified = DateTimeOffset.MaxValue } },
        { "upload journal", new UploadJournalRecord { Key = "runs/r/exp0/artifacts/" + Unicode, UploadId = "u+/=", Started = When } },
    };

    [Theory]
    [MemberData(nameof(Records))]
    public void A_record_is_written_byte_for_byte_as_the_reflection_serializer_wrote_it(string name, object record)
    {
        var earlier = JsonSerializer.SerializeToUtf8Bytes(record, record.GetType(), record is ManifestRecord or ManifestEntry ? EarlierCompact : EarlierRecords);
        var now = record switch
        {
            RunRecord r => RecordJson.Serialize(r),
            ExperimentRecord e => RecordJson.Serialize(e),
            ManifestRecord m => RecordJson.Serialize(m),
            UploadJournalRecord u => RecordJson.Serialize(u),
            ManifestEntry e => JsonSerializer.SerializeToUtf8Bytes(e, RecordJson.CompactEntry),
            _ => throw new ArgumentException(name),
        };
        Assert.Equal(Encoding.UTF8.GetString(earlier), Encoding.UTF8.GetString(now));
        Assert.Equal(earlier, now);
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void A_record_the_reflection_serializer_wrote_reads_back_to_the_same_bytes(string name, object record)
    {
        var earlier = JsonSerializer.SerializeToUtf8Bytes(record, record.GetType(), record is ManifestRecord or ManifestEntry ? EarlierCompact : EarlierRecords);
        byte[] again = record switch
        {
            RunRecord => RecordJson.Serialize(RecordJson.Deserialize<RunRecord>(earlier, "s", name)),
            ExperimentRecord => RecordJson.Serialize(RecordJson.Deserialize<ExperimentRecord>(earlier, "s", name)),
            ManifestRecord => RecordJson.Serialize(RecordJson.Deserialize<ManifestRecord>(earlier, "s", name)),
            UploadJournalRecord => RecordJson.Serialize(RecordJson.Deserialize<UploadJournalRecord>(earlier, "s", name)),
            ManifestEntry => JsonSerializer.SerializeToUtf8Bytes(JsonSerializer.Deserialize(earlier, RecordJson.CompactEntry)!, RecordJson.CompactEntry),
            _ => throw new ArgumentException(name),
        };
        Assert.Equal(Encoding.UTF8.GetString(earlier), Encoding.UTF8.GetString(again));
    }

    [Fact]
    public void Every_record_of_the_fixture_stores_reads_and_writes_as_the_reflection_serializer_does()
    {
        var read = 0;
        foreach (var fixture in new[] { "v1", "v2", "0.3.0" })
        {
            foreach (var (key, path) in FixtureStores.Files(fixture))
            {
                var bytes = File.ReadAllBytes(path);
                (object Now, object Earlier)? pair = Path.GetFileName(key) switch
                {
                    "run.json" => (RecordJson.Deserialize<RunRecord>(bytes, fixture, key), JsonSerializer.Deserialize<RunRecord>(bytes, EarlierRecords)!),
                    "experiment.json" => (RecordJson.Deserialize<ExperimentRecord>(bytes, fixture, key), JsonSerializer.Deserialize<ExperimentRecord>(bytes, EarlierRecords)!),
                    "manifest.json" => (RecordJson.Deserialize<ManifestRecord>(bytes, fixture, key), JsonSerializer.Deserialize<ManifestRecord>(bytes, EarlierRecords)!),
                    _ => null,
                };
                if (pair is not { } p) continue;
                var options = p.Now is ManifestRecord ? EarlierCompact : EarlierRecords;
                // Read alike (the same object, as the earlier serializer writes both) and written alike.
                Assert.Equal(JsonSerializer.Serialize(p.Earlier, p.Earlier.GetType(), options), JsonSerializer.Serialize(p.Now, p.Now.GetType(), options));
                var now = p.Now switch
                {
                    RunRecord r => RecordJson.Serialize(r),
                    ExperimentRecord e => RecordJson.Serialize(e),
                    ManifestRecord m => RecordJson.Serialize(m),
                    _ => throw new InvalidOperationException(key),
                };
                Assert.Equal(JsonSerializer.Serialize(p.Earlier, p.Earlier.GetType(), options), Encoding.UTF8.GetString(now));
                read++;
            }
        }
        Assert.True(read >= 60, $"only {read} records were read from the fixtures");
    }

    [Fact]
    public void An_enum_written_as_a_number_or_in_other_casing_still_reads()
    {
        // The reflection converter accepted both; the generated one must too.
        var json = Encoding.UTF8.GetBytes("""{"schema":2,"run":"r","experiment":"exp0","status":3,"created":"2026-01-01T00:00:00+00:00"}""");
        Assert.Equal(GridStatus.Succeeded, RecordJson.Deserialize<ExperimentRecord>(json, "s", "k").Status);
        json = Encoding.UTF8.GetBytes("""{"schema":2,"run":"r","experiment":"exp0","status":"failed","created":"2026-01-01T00:00:00+00:00"}""");
        Assert.Equal(GridStatus.Failed, RecordJson.Deserialize<ExperimentRecord>(json, "s", "k").Status);
    }

    [Theory]
    [InlineData(null, new string[0])]
    [InlineData("python train.py", new[] { "lr", "0.1", "seed", "1" })]
    [InlineData(ShortUnicode, new[] { ShortUnicode, "v", "e", "" })]
    public void A_run_key_summary_is_the_JSON_earlier_releases_encoded(string? command, string[] pairs)
    {
        var parameters = new Dictionary<string, string>();
        for (var i = 0; i < pairs.Length; i += 2) parameters[pairs[i]] = pairs[i + 1];
        var earlierOptions = new JsonSerializerOptions
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        var earlier = JsonSerializer.SerializeToUtf8Bytes(new SummaryShape { C = command, P = parameters.Count == 0 ? null : parameters }, earlierOptions);
        var summary = CatalogIndex.EncodeSummary(command, parameters);
        Assert.NotNull(summary);
        var b64 = summary!.Replace('-', '+').Replace('_', '/');
        Assert.Equal(Encoding.UTF8.GetString(earlier), Encoding.UTF8.GetString(Convert.FromBase64String(b64 + new string('=', (4 - b64.Length % 4) % 4))));
        var (c, p) = CatalogIndex.DecodeSummary(summary);
        Assert.Equal(command, c);
        Assert.Equal(parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal), p.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    private sealed class SummaryShape
    {
        public string? C { get; set; }
        public Dictionary<string, string>? P { get; set; }
    }

    [Fact]
    public void The_store_settings_file_is_the_JSON_earlier_releases_wrote()
    {
        var value = new Dictionary<string, string> { ["store"] = "s3://bucket/" + Unicode + "?endpoint=http%3A%2F%2F127.0.0.1%3A4610" };
        Assert.Equal(JsonSerializer.Serialize(value, EarlierRecords), JsonSerializer.Serialize(value, RecordJsonContext.Default.DictionaryStringString));
    }

    private static readonly JsonSerializerOptions EarlierWeb = new(JsonSerializerDefaults.Web);

    [Fact]
    public void The_page_API_answers_as_its_anonymous_objects_did()
    {
        var e = new GridExperiment("my-run", "exp3", "/store")
        {
            Status = GridStatus.Running, ExitCode = null, Signal = "SIGINT", Started = When, ArtifactCount = 2, ArtifactBytes = 1L << 33,
            Parameters = new Dictionary<string, string> { ["lr"] = "0.1", [Unicode] = Unicode }, Tags = new[] { "a", Unicode }, OwnTags = Array.Empty<string>(),
            Protected = true, Metrics = new Dictionary<string, double> { ["loss"] = 1d / 3 }, MetricsSource = "metrics.csv",
        };
        var errors = new[] { "damaged " + Unicode };
        // The shape the server built before, member for member.
        var earlier = new
        {
            experiments = new[] { e }.Select(e => new
            {
                id = e.Id, name = e.Experiment, status = e.Status.ToString(), active = e.Status.IsActive(), exitCode = e.ExitCode, signal = e.Signal,
                reason = e.Reason, artifacts = e.ArtifactCount, bytes = e.ArtifactBytes, started = e.Started, finished = e.Finished,
                parameters = e.Parameters, tags = e.Tags, ownTags = e.OwnTags, @protected = e.Protected, metrics = e.Metrics, metricsSource = e.MetricsSource,
            }),
            errors = errors.Select(m => m),
        };
        Assert.Equal(JsonSerializer.Serialize(earlier, EarlierWeb),
            JsonSerializer.Serialize(new ExperimentsAnswer(new[] { e }.Select(ExperimentRow.Of), errors.Select(m => m)), ApiJson.Default.ExperimentsAnswer));

        var a = new GridArtifact("my-run", "exp3", "d/" + Unicode + ".png", "/store") { Size = 5, LastModified = When, Sha256 = null };
        Assert.Equal(JsonSerializer.Serialize(new { artifacts = new[] { a }.Select(a => new { path = a.Path, size = a.Size, modified = a.LastModified, sha256 = a.Sha256, kind = ArtifactKinds.Of(a.Path) }), errors = Array.Empty<string>().Select(m => m) }, EarlierWeb),
            JsonSerializer.Serialize(new ArtifactsAnswer(new[] { a }.Select(a => new ArtifactRow(a.Path, a.Size, a.LastModified, a.Sha256, ArtifactKinds.Of(a.Path))), Array.Empty<string>().Select(m => m)), ApiJson.Default.ArtifactsAnswer));

        IReadOnlyList<string> columns = new[] { "loss", Unicode };
        IReadOnlyDictionary<string, double[][]> series = new Dictionary<string, double[][]> { ["loss"] = new[] { new[] { 0d, 0.5 }, new[] { 1d, 0.25 } } };
        Assert.Equal(JsonSerializer.Serialize(new { source = (string?)null, x = (string?)"step", columns, series, rows = 2, downsampled = false, problem = (string?)null }, EarlierWeb),
            JsonSerializer.Serialize(new MetricsAnswer(null, "step", columns, series, 2, false, null), ApiJson.Default.MetricsAnswer));

        var url = new Uri("http://127.0.0.1:1/a?sig=" + Uri.EscapeDataString(Unicode));
        var warnings = new List<string> { "w" };
        Assert.Equal(JsonSerializer.Serialize(new { url, expiresAt = When, warnings }, EarlierWeb), JsonSerializer.Serialize(new LinkAnswer(url, When, warnings), ApiJson.Default.LinkAnswer));
        Assert.Equal(JsonSerializer.Serialize(new { error = Unicode, errorId = "NotFound" }, EarlierWeb), JsonSerializer.Serialize(new ErrorAnswer(Unicode, "NotFound"), ApiJson.Default.ErrorAnswer));
        Assert.Equal(JsonSerializer.Serialize(new { location = "s3://b/p", kind = "S3" }, EarlierWeb), JsonSerializer.Serialize(new StoreAnswer("s3://b/p", "S3"), ApiJson.Default.StoreAnswer));
    }
}
