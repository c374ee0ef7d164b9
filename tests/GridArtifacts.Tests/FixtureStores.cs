using System.Text.Json;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

public sealed record ExpectedExperiment(string Status, int? ExitCode, Dictionary<string, string> Artifacts)
{
    /// <summary>Its tags, its run's among them (0.3.0 and later; none before).</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();

    /// <summary>The tags on the experiment itself.</summary>
    public IReadOnlyList<string> OwnTags { get; init; } = Array.Empty<string>();

    /// <summary>The metrics its record carries, and the artifact they came from (0.3.0 and later).</summary>
    public Dictionary<string, double> Metrics { get; init; } = new(StringComparer.OrdinalIgnoreCase);
    public string? MetricsSource { get; init; }
}

public sealed record ExpectedRun(string Status, bool Protected, Dictionary<string, ExpectedExperiment> Experiments)
{
    /// <summary>The run's tags as Get-GridRun shows them: its own and its experiments' (0.3.0 and later; none before).</summary>
    public IReadOnlyList<string> Tags { get; init; } = Array.Empty<string>();
}

/// <summary>
/// The stores earlier releases wrote, copied file for file into a fresh folder or S3 prefix, and what
/// their generators recorded of them. A fixture is named by the schema its release was the first to
/// write (<c>v1</c>, <c>v2</c>: tests/fixtures/store-v&lt;schema&gt;, made by New-Schema&lt;schema&gt;Store.ps1) or
/// by the release itself where a later one kept the schema (<c>0.3.0</c>: tests/fixtures/store-0.3.0,
/// made by New-Store030.ps1); each generator ran against a build of that release's commit.
/// </summary>
public static class FixtureStores
{
    public static string Root
    {
        get
        {
            var root = AppContext.BaseDirectory;
            while (root is not null && !File.Exists(Path.Combine(root, "GridArtifacts.sln"))) root = Path.GetDirectoryName(root);
            return Path.Combine(root ?? throw new InvalidOperationException("The repository root was not found."), "tests", "fixtures");
        }
    }

    /// <summary>The fixture first written with a schema: <c>v&lt;schema&gt;</c>.</summary>
    private static string Named(int schema) => $"v{schema}";

    /// <summary>Every file of the fixture store, by key.</summary>
    public static IEnumerable<(string Key, string Path)> Files(int schema) => Files(Named(schema));

    /// <summary>Every file of the fixture store <c>store-&lt;fixture&gt;</c>, by key.</summary>
    public static IEnumerable<(string Key, string Path)> Files(string fixture)
    {
        var store = Path.Combine(Root, $"store-{fixture}");
        return Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories)
            .Select(f => (Path.GetRelativePath(store, f).Replace('\\', '/'), f));
    }

    /// <summary>The run a fixture key belongs to: <c>runs/&lt;run&gt;/...</c> or an index key <c>runs/&lt;run&gt;~...</c>.</summary>
    public static string RunOf(string key) => key[StoreLayout.RunsPrefix.Length..].Split('/', '~')[0];

    /// <summary>The bytes of a run's artifacts, from the fixture's files.</summary>
    public static long ArtifactBytes(string fixture, string run) => Files(fixture)
        .Where(f => RunOf(f.Key) == run && f.Key.Split('/') is [_, _, _, "artifacts", ..]).Sum(f => new FileInfo(f.Path).Length);

    public static long ArtifactBytes(int schema, string run) => ArtifactBytes(Named(schema), run);

    /// <summary>Every key under runs/ in a store (objects, not folders).</summary>
    public static async Task<List<string>> RunKeysAsync(GridCatalog catalog)
    {
        var keys = new List<string>();
        await foreach (var o in catalog.Store.ListAsync(StoreLayout.RunsPrefix, recursive: true, default)) if (!o.IsPrefix) keys.Add(o.Key);
        return keys;
    }

    /// <summary>The runs in store-v&lt;schema&gt;.expected.json, by name.</summary>
    public static Dictionary<string, ExpectedRun> Expected(int schema)
    {
        var (expected, written) = Read(Named(schema));
        Assert.Equal(schema, written);
        return expected;
    }

    /// <summary>The runs in store-&lt;fixture&gt;.expected.json, by name; a release's own fixture says it wrote it.</summary>
    public static Dictionary<string, ExpectedRun> Expected(string fixture)
    {
        var (expected, written) = Read(fixture);
        if (fixture.StartsWith('v') && int.TryParse(fixture.AsSpan(1), out var schema)) Assert.Equal(schema, written);
        else Assert.StartsWith($"GridArtifacts {fixture} ", WrittenBy(fixture));
        return expected;
    }

    /// <summary>The release (and commit) that wrote a fixture, as its generator recorded.</summary>
    public static string WrittenBy(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, $"store-{fixture}.expected.json")));
        return doc.RootElement.GetProperty("writtenBy").GetString()!;
    }

    private static (Dictionary<string, ExpectedRun> Runs, int Schema) Read(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, $"store-{fixture}.expected.json")));
        var runs = doc.RootElement.GetProperty("runs").EnumerateObject().ToDictionary(r => r.Name, r => new ExpectedRun(
            r.Value.GetProperty("status").GetString()!,
            // 0.1.0 had no protection, so its file does not say.
            r.Value.TryGetProperty("protected", out var p) && p.GetBoolean(),
            r.Value.GetProperty("experiments").EnumerateObject().ToDictionary(e => e.Name, e => new ExpectedExperiment(
                e.Value.GetProperty("status").GetString()!,
                e.Value.GetProperty("exitCode").ValueKind == JsonValueKind.Number ? e.Value.GetProperty("exitCode").GetInt32() : null,
                e.Value.GetProperty("artifacts").EnumerateObject().ToDictionary(a => a.Name, a => a.Value.GetString()!, StringComparer.Ordinal))
            {
                // Tags and metrics came with 0.3.0; the earlier fixtures' files do not say.
                Tags = Strings(e.Value, "tags"),
                OwnTags = Strings(e.Value, "ownTags"),
                Metrics = e.Value.TryGetProperty("metrics", out var m)
                    ? m.EnumerateObject().ToDictionary(x => x.Name, x => x.Value.GetDouble(), StringComparer.OrdinalIgnoreCase)
                    : new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase),
                MetricsSource = e.Value.TryGetProperty("metricsSource", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null,
            }))
        {
            Tags = Strings(r.Value, "tags"),
        });
        return (runs, doc.RootElement.GetProperty("schema").GetInt32());
    }

    private static IReadOnlyList<string> Strings(JsonElement e, string name) =>
        e.TryGetProperty(name, out var a) ? a.EnumerateArray().Select(x => x.GetString()!).ToList() : Array.Empty<string>();

    public static GridCatalog InFolder(int schema, string root) => InFolder(Named(schema), root);

    public static GridCatalog InFolder(string fixture, string root)
    {
        foreach (var (key, path) in Files(fixture))
        {
            var target = Path.Combine(root, key);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(path, target);
        }
        return new GridCatalog(new FileSystemStore(root));
    }

    public static Task<GridCatalog> InS3(int schema, S3ServerFixture s3) => InS3(Named(schema), s3);

    public static async Task<GridCatalog> InS3(string fixture, S3ServerFixture s3)
    {
        var store = new S3Store(s3.StoreUri(s3.NewBucket(), "team/ml"));
        foreach (var (key, path) in Files(fixture)) await store.PutFileAsync(key, path, default);
        return new GridCatalog(store) { ClaimSettle = TimeSpan.FromMilliseconds(300) };
    }

    /// <summary>
    /// Saves every artifact of an experiment as Save-GridArtifact does (the transfer engine, which
    /// checks each download against its recorded hash) and returns the saved files by SHA-256.
    /// </summary>
    public static async Task<Dictionary<string, string>> SavedHashes(GridCatalog catalog, string run, string exp, string dest)
    {
        var listed = await catalog.Artifacts.GetArtifactsAsync(run, exp, default);
        Assert.Empty(listed.Errors);
        var items = listed.Items.Select(a => new SaveItem(a, GridNames.LocalPathFor(dest, run, exp, a.Path))).ToList();
        var errors = new List<GridException>();
        await new TransferEngine(new TransferOptions()).DownloadAsync(items, _ => catalog, force: false, throttleLimit: 4,
            new TransferProgress(items.Count, items.Sum(i => i.Artifact.Size)), _ => { }, e => { lock (errors) errors.Add(e); }, default);
        Assert.Empty(errors);
        var saved = items.ToDictionary(i => i.Artifact.Path, i => TestBytes.Sha256(i.LocalPath), StringComparer.Ordinal);
        // The engine checks size alone where a manifest has no hash: every artifact here must have one.
        Assert.Equal(saved, listed.Items.ToDictionary(a => a.Path, a => a.Sha256!, StringComparer.Ordinal));
        return saved;
    }
}
