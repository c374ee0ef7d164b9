using System.Management.Automation;
using System.Text;
using Amazon.S3.Model;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// What the module takes on trust from a store, in both stores: an artifact replaced after its
/// manifest was sealed, records too large to read whole, manifests of any size, and keys longer than
/// the store holds. Each is a typed error naming the file, and the rest is listed, saved or stored.
/// </summary>
[Collection(S3SecondLane.Name)]
public sealed class StoreTrustTests : IDisposable
{
    private readonly S3ServerFixture _s3;
    private readonly TempDir _temp = new();
    private readonly List<ModuleHost> _hosts = new();

    public StoreTrustTests(S3ServerFixture s3) => _s3 = s3;

    public void Dispose()
    {
        foreach (var h in _hosts) h.Dispose();
        _temp.Dispose();
    }

    /// <summary>A fresh store of the kind: its location, a catalog on it, and a way to put any bytes under any key behind the module's back.</summary>
    private (string Location, GridCatalog Catalog, Func<string, byte[], Task> PutRaw) NewStore(string kind, string prefix = "trust")
    {
        if (kind == "s3")
        {
            var bucket = _s3.NewBucket();
            var location = _s3.StoreUri(bucket, prefix);
            return (location, new GridCatalog(new S3Store(location)), (key, bytes) => _s3.Client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = bucket, Key = prefix + "/" + key, InputStream = new MemoryStream(bytes), UseChunkEncoding = false,
            }));
        }
        var root = _temp.Sub("store-" + Guid.NewGuid().ToString("N")[..8]);
        return (root, new GridCatalog(new FileSystemStore(root)), (key, bytes) =>
        {
            var file = Path.Combine(root, key.Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(file, bytes);
            return Task.CompletedTask;
        });
    }

    private ModuleHost Host(string location)
    {
        var host = new ModuleHost(location, _temp.Path);
        _hosts.Add(host);
        return host;
    }

    private string Source(string name, params (string Path, byte[] Bytes)[] files)
    {
        foreach (var (path, bytes) in files) _temp.WriteFile($"{name}/{path}", bytes);
        return _temp.Sub(name);
    }

    // ---- an artifact replaced after the seal ----------------------------------------------------

    [Theory]
    [InlineData("fs", false)]
    [InlineData("fs", true)]
    [InlineData("s3", false)]
    [InlineData("s3", true)]
    public async Task A_sealed_artifact_replaced_with_other_bytes_is_a_HashMismatch_and_the_destination_keeps_what_it_had(string kind, bool sameSize)
    {
        var (location, catalog, putRaw) = NewStore(kind);
        var host = Host(location);
        var original = Encoding.UTF8.GetBytes("the bytes the experiment wrote\n");
        var other = sameSize ? Encoding.UTF8.GetBytes("THE BYTES THE EXPERIMENT WROTE\n") : Encoding.UTF8.GetBytes("other bytes, and more of them than before\n");
        Assert.Equal(sameSize, original.Length == other.Length);
        var kept = TestBytes.Random(3000, 7);
        host.Run("Import-GridArtifact -Path $args[0] -Run swap-run | Out-Null", Source("swap-src", ("a.txt", original), ("b.bin", kept)));
        var before = Path.Combine(_temp.Path, "before");
        host.Run("Save-GridArtifact swap-run -Destination $args[0] | Out-Null", before);

        await putRaw(StoreLayout.ArtifactKey("swap-run", "exp0", "a.txt"), other);

        // The listing still shows the hash the manifest sealed, not none.
        var listed = host.Run("Get-GridArtifact swap-run -Path a.txt").Select(o => (GridArtifact)o.BaseObject).Single();
        Assert.Equal(TestBytes.Sha256(original), listed.Sha256);
        Assert.Equal(other.Length, listed.Size);
        Assert.Equal(TestBytes.Sha256(original), (await catalog.Artifacts.GetArtifactsAsync("swap-run", "exp0", default)).Items.Single(a => a.Path == "a.txt").Sha256);

        // A new destination: the replaced file fails by name and is not written; the other one is saved.
        var fresh = Path.Combine(_temp.Path, "fresh");
        var (output, errors) = host.Invoke("Save-GridArtifact swap-run -Destination $args[0] -PassThru", new object[] { fresh });
        var error = Assert.Single(errors);
        Assert.StartsWith("HashMismatch", error.FullyQualifiedErrorId);
        Assert.Contains("a.txt", error.Exception.Message);
        Assert.Equal(ErrorCategory.InvalidResult, error.CategoryInfo.Category);
        Assert.Equal("b.bin", ((GridSaveResult)Assert.Single(output).BaseObject).Artifact.Path);
        var freshA = Path.Combine(fresh, "swap-run", "exp0", "a.txt");
        Assert.False(File.Exists(freshA));
        Assert.Empty(Directory.EnumerateFiles(Path.GetDirectoryName(freshA)!, "a.txt*"));
        Assert.Equal(TestBytes.Sha256(kept), TestBytes.Sha256(Path.Combine(fresh, "swap-run", "exp0", "b.bin")));

        // Saved again over the good copy, even with -Force: the good copy stays as it was.
        var (_, again) = host.Invoke("Save-GridArtifact swap-run -Destination $args[0] -Force", new object[] { before });
        Assert.StartsWith("HashMismatch", Assert.Single(again).FullyQualifiedErrorId);
        Assert.Equal(TestBytes.Sha256(original), TestBytes.Sha256(Path.Combine(before, "swap-run", "exp0", "a.txt")));
    }

    // ---- records too large to read whole ---------------------------------------------------------

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task An_oversized_experiment_record_is_a_DamagedRecord_naming_it_and_the_other_experiments_are_listed(string kind)
    {
        var (location, catalog, putRaw) = NewStore(kind);
        var host = Host(location);
        var src = Source("big-src", ("x.txt", "x"u8.ToArray()));
        foreach (var exp in new[] { "exp0", "exp1", "exp2" }) host.Run("Import-GridArtifact -Path $args[0] -Run big-run -Experiment $args[1] | Out-Null", src, exp);
        var key = StoreLayout.ExperimentRecordKey("big-run", "exp1");
        if (kind == "fs")
        {
            // 2.2 GB, sparse: no disk is used, and no reader may try to hold it.
            using var fs = new FileStream(Path.Combine(location, key), FileMode.Open, FileAccess.Write);
            fs.SetLength(2_200_000_000L);
        }
        else
        {
            var record = (await catalog.Store.TryReadAllBytesAsync(key, default))!;
            var padded = new byte[StoreLayout.MaxRecordBytes + (1 << 20)];
            record.CopyTo(padded, 0);
            Array.Fill(padded, (byte)' ', record.Length, padded.Length - record.Length);
            await putRaw(key, padded);
        }

        var (output, errors) = host.Invoke("Get-GridExperiment big-run", Array.Empty<object>());
        Assert.Equal(new[] { "exp0", "exp2" }, output.Select(o => ((GridExperiment)o.BaseObject).Experiment));
        var error = Assert.Single(errors);
        Assert.StartsWith("DamagedRecord", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.Contains(key, error.Exception.Message);
        Assert.Contains("MiB", error.Exception.Message);

        var direct = await Assert.ThrowsAsync<GridException>(() => catalog.Store.TryReadAllBytesAsync(key, default));
        Assert.Equal(GridErrorKind.DamagedRecord, direct.Kind);
        Assert.Equal(key, direct.Target);

        // The run itself still lists, and its artifacts too.
        Assert.Single(host.Run("Get-GridRun big-run"));
        Assert.Single(host.Run("Get-GridArtifact big-run-exp1"));
    }

    [Fact]
    public async Task A_sparse_manifest_of_2_GB_is_a_DamagedRecord_naming_it_and_the_artifacts_are_still_listed()
    {
        var (location, _, _) = NewStore("fs");
        var host = Host(location);
        host.Run("Import-GridArtifact -Path $args[0] -Run huge-manifest | Out-Null", Source("hm-src", ("a.txt", "a"u8.ToArray()), ("b.txt", "b"u8.ToArray())));
        var key = StoreLayout.ManifestKey("huge-manifest", "exp0");
        using (var fs = new FileStream(Path.Combine(location, key), FileMode.Open, FileAccess.Write)) fs.SetLength(2_200_000_000L);

        var (output, errors) = host.Invoke("Get-GridArtifact huge-manifest", Array.Empty<object>());
        Assert.Equal(new[] { "a.txt", "b.txt" }, output.Select(o => ((GridArtifact)o.BaseObject).Path).Order(StringComparer.Ordinal));
        var error = Assert.Single(errors);
        Assert.StartsWith("DamagedRecord", error.FullyQualifiedErrorId);
        Assert.Contains(key, error.Exception.Message);
        // Get-GridExperiment of a schema-2 experiment takes its figures from the index, not the manifest.
        Assert.Single(host.Run("Get-GridExperiment huge-manifest"));
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_manifest_larger_than_any_record_is_read_whole_entry_by_entry(string kind)
    {
        var (_, catalog, _) = NewStore(kind);
        var src = Source("many-src", ("real.txt", "real"u8.ToArray()));
        await new Core.Capture.ArtifactImporter(catalog).ImportAsync(new Core.Capture.ImportRequest
        {
            Run = "many-run", Experiment = "exp0", Files = new[] { ("real.txt", Path.Combine(src, "real.txt")) },
        }, e => throw e, _ => { }, default);
        var manifest = (await catalog.Manifests.ReadManifestAsync("many-run", "exp0", default))!;
        var real = Assert.Single(manifest.Artifacts);
        // A manifest of a run still going (so the entries need no objects), more than a record may be.
        var padding = new string('p', 400);
        for (var i = 0; manifest.Artifacts.Count * 500 < StoreLayout.MaxRecordBytes * 2; i++)
        {
            manifest.Artifacts.Add(new ManifestEntry { Path = $"gone/{i:d6}-{padding}", Size = i, Sha256 = new string('0', 64), Modified = DateTimeOffset.UnixEpoch });
        }
        manifest.Sealed = false;
        await catalog.Manifests.WriteManifestAsync(manifest, default);
        Assert.True((await catalog.Store.ListAsync(StoreLayout.ManifestKey("many-run", "exp0"), false, default).SingleAsync()).Size > StoreLayout.MaxRecordBytes);

        var read = (await catalog.Manifests.ReadManifestAsync("many-run", "exp0", default))!;
        Assert.Equal(manifest.Artifacts.Count, read.Artifacts.Count);
        Assert.Equal(manifest.Artifacts.Select(a => a.Path).Order(StringComparer.Ordinal), read.Artifacts.Select(a => a.Path).Order(StringComparer.Ordinal));
        var listed = await catalog.Artifacts.GetArtifactsAsync("many-run", "exp0", default);
        Assert.Empty(listed.Errors);
        Assert.Equal(real.Sha256, Assert.Single(listed.Items).Sha256);
    }

    // ---- keys longer than the store holds --------------------------------------------------------

    /// <summary>A path of 900 UTF-8 bytes (the longest the names allow) in parts of at most 200: any folder store holds it.</summary>
    private static string LongPath() => string.Join('/', Enumerable.Range(0, 4).Select(i => $"{i}" + new string('d', 199))) + "/" + new string('f', 96);

    [Fact]
    public void The_store_says_which_artifact_paths_it_cannot_hold()
    {
        var s3Prefix = new string('p', 120);
        var (_, s3, _) = NewStore("s3", s3Prefix);
        var (_, fs, _) = NewStore("fs");
        Assert.Equal(1024 - s3Prefix.Length - 1, s3.Store.MaxKeyBytes);
        Assert.Equal(900, Encoding.UTF8.GetByteCount(LongPath()));

        // Within the names' rules, but over S3's 1,024 bytes once the prefix and the run's folders are added.
        var problem = s3.Artifacts.ArtifactPathProblem("a-long-run-name", "exp0", LongPath());
        Assert.NotNull(problem);
        Assert.Contains(s3.Store.MaxKeyBytes.ToString(), problem);
        Assert.Null(fs.Artifacts.ArtifactPathProblem("a-long-run-name", "exp0", LongPath()));
        Assert.Null(s3.Artifacts.ArtifactPathProblem("a-long-run-name", "exp0", "short/path.txt"));

        // A name longer than a file name may be on a folder store; S3 takes it.
        var longName = "d/" + new string('n', 300);
        Assert.Contains("255", fs.Artifacts.ArtifactPathProblem("r", "exp0", longName));
        Assert.Null(s3.Artifacts.ArtifactPathProblem("r", "exp0", longName));

        // The names' own rules, on both.
        Assert.Equal(GridNames.ArtifactPathProblem("../x"), fs.Artifacts.ArtifactPathProblem("r", "exp0", "../x"));
        Assert.Equal(GridNames.ArtifactPathProblem("../x"), s3.Artifacts.ArtifactPathProblem("r", "exp0", "../x"));
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task An_artifact_whose_key_the_store_cannot_hold_is_an_error_naming_it_and_the_others_are_imported(string kind)
    {
        var (location, catalog, _) = NewStore(kind, new string('p', 120));
        var host = Host(location);
        // S3: a 900-byte path under a 120-byte prefix. Folder store: one name of 300 bytes (written locally in a shorter form and imported by file).
        var tooLong = kind == "s3" ? LongPath() : "d/" + new string('n', 300);
        var src = Source("key-src", ("ok.txt", "fine"u8.ToArray()));
        var local = kind == "s3" ? _temp.WriteFile("key-src/" + tooLong, "too long"u8.ToArray()) : null;
        var (output, errors) = kind == "s3"
            ? Listed(host.Invoke("Import-GridArtifact -Path $args[0] -Run key-run", new object[] { src }))
            : await ImportWithLongNameAsync(catalog, src, tooLong);
        var error = Assert.Single(errors);
        Assert.StartsWith("UnstorableArtifactName", error.FullyQualifiedErrorId);
        Assert.Contains(tooLong, error.Exception.Message);
        Assert.Single(output);
        var stored = await catalog.Artifacts.GetArtifactsAsync("key-run", "exp0", default);
        Assert.Equal(new[] { "ok.txt" }, stored.Items.Select(a => a.Path));
        Assert.Empty(stored.Errors);
        Assert.Equal(GridStatus.Failed, (await catalog.Runs.GetExperimentAsync("key-run", "exp0", default)).Status);
    }

    private static (List<PSObject> Output, List<ErrorRecord> Errors) Listed((System.Collections.ObjectModel.Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors) r) =>
        (r.Output.ToList(), r.Errors.ToList());

    /// <summary>A folder store cannot hold a name the local file system cannot make either: the file is imported under a name of its own.</summary>
    private static async Task<(List<PSObject> Output, List<ErrorRecord> Errors)> ImportWithLongNameAsync(GridCatalog catalog, string src, string tooLong)
    {
        var errors = new List<GridException>();
        var exp = await new Core.Capture.ArtifactImporter(catalog).ImportAsync(new Core.Capture.ImportRequest
        {
            Run = "key-run", Experiment = "exp0",
            Files = new[] { ("ok.txt", Path.Combine(src, "ok.txt")), (tooLong, Path.Combine(src, "ok.txt")) },
        }, e => { lock (errors) errors.Add(e); }, _ => { }, default);
        return (new List<PSObject> { new(exp) },
            errors.Select(e => new ErrorRecord(e, e.ErrorId, ErrorCategory.InvalidArgument, e.Target)).ToList());
    }

    [Fact]
    public async Task The_capture_agent_reports_a_file_whose_key_the_store_cannot_hold_by_name_and_sends_the_rest()
    {
        var (_, catalog, _) = NewStore("s3", new string('p', 120));
        var work = _temp.Sub("capture-work");
        Directory.CreateDirectory(work);
        var agent = new Core.Capture.CaptureAgent(catalog, "key-capture", "exp0", new Core.Capture.CaptureOptions
        {
            FileName = "bash",
            Arguments = new[] { "-c", $"mkdir -p \"$(dirname '{LongPath()}')\"; echo too long > '{LongPath()}'; echo good > good.txt" },
            WorkingDirectory = work,
            SettleTime = TimeSpan.FromMilliseconds(300),
            RescanInterval = TimeSpan.FromMilliseconds(200),
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
        });
        Assert.Equal(0, await agent.RunAsync(default));
        var exp = await catalog.Runs.GetExperimentAsync("key-capture", "exp0", default);
        var unstorable = Assert.Single(exp.Sync!.Unstorable);
        Assert.StartsWith(LongPath() + ":", unstorable);
        Assert.Contains(catalog.Store.MaxKeyBytes.ToString(), unstorable);
        Assert.Equal(new[] { "good.txt" }, (await catalog.Artifacts.GetArtifactsAsync("key-capture", "exp0", default)).Items.Select(a => a.Path));
    }

    [Fact]
    public async Task Copy_GridRun_refuses_by_name_a_file_whose_key_the_target_cannot_hold_and_copies_the_rest()
    {
        var (source, _, _) = NewStore("fs");
        var (target, targetCatalog, _) = NewStore("s3", new string('p', 120));
        var host = Host(source);
        var src = Source("copy-src", ("ok.txt", "fine"u8.ToArray()));
        _temp.WriteFile("copy-src/" + LongPath(), "too long for the target"u8.ToArray());
        host.Run("Import-GridArtifact -Path $args[0] -Run copy-run | Out-Null", src);
        Assert.Equal(2, host.Run("Get-GridArtifact copy-run").Count);

        var (_, errors) = host.Invoke("Copy-GridRun copy-run -Destination $args[0]", new object[] { target });
        var error = Assert.Single(errors);
        Assert.StartsWith("UnstorableArtifactName", error.FullyQualifiedErrorId);
        Assert.Contains(LongPath(), error.Exception.Message);
        var copied = await targetCatalog.Artifacts.GetArtifactsAsync("copy-run", "exp0", default);
        Assert.Equal(new[] { "ok.txt" }, copied.Items.Select(a => a.Path));
    }
}
