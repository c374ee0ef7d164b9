using System.Management.Automation;
using System.Management.Automation.Runspaces;
using Amazon.S3.Model;
using GridArtifacts.Commands;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// Input nobody should send, through the cmdlets as users call them: hostile keys another writer put
/// in a bucket, a file and a folder of one name, damaged and future records, invalid names, link
/// lifetimes and mistyped store URIs. Each gets a typed error naming what was wrong, and nothing is
/// written where it should not be.
/// </summary>
[Collection(S3Collection.Name)]
public sealed class BadInputTests : IDisposable
{
    private readonly S3ServerFixture _s3;
    private readonly TempDir _temp = new();
    private readonly ModuleHost _host;

    public BadInputTests(S3ServerFixture s3)
    {
        _s3 = s3;
        _host = new ModuleHost(_temp.Sub("store"), _temp.Path);
    }

    public void Dispose()
    {
        _host.Dispose();
        _temp.Dispose();
    }

    private (List<object> Output, List<ErrorRecord> Errors) RunWithErrors(string script, params object[] args)
    {
        var (output, errors) = _host.Invoke(script, args, terminatingAsError: true);
        return (output.Select(o => o.BaseObject).ToList(), errors.ToList());
    }

    private List<object> Run(string script, params object[] args) => _host.Run(script, args).Select(o => o.BaseObject).ToList();

    private static List<string> FilesUnder(string root) =>
        Directory.Exists(root) ? Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList() : new List<string>();

    [Fact]
    public async Task Hostile_keys_another_writer_put_in_the_bucket_are_refused_one_by_one_and_nothing_lands_outside_the_destination()
    {
        var bucket = _s3.NewBucket();
        const string prefix = "hostile/";
        var store = _s3.StoreUri(bucket, "hostile");
        var artifacts = $"{prefix}runs/evil-run/exp0/artifacts/";
        string longest;
        await Put(bucket, prefix + "runs/evil-run/run.json", "{\"schema\":1,\"name\":\"evil-run\"}");
        await Put(bucket, prefix + "runs/evil-run/exp0/experiment.json", "{\"schema\":1,\"run\":\"evil-run\",\"experiment\":\"exp0\",\"status\":\"Succeeded\"}");
        var good = new Dictionary<string, string> { ["ok.txt"] = "fine", ["a..b"] = "dots inside a name are fine", ["v1..v2/x..y.bin"] = "so are these", ["a/b"] = "under a" };
        // s3rver keeps keys as files, so it cannot hold keys with '..' or empty segments as written
        // ('../<dest>-evil/x', '/../x', '//../x', '/etc/x'): those are in CmdletTests and NamesTests. These it holds.
        // The longest key S3 holds (1,024 bytes with the store's prefix, as the store knows: MaxKeyBytes),
        // whose path is longer than the names allow (900 bytes): another writer can put it, no reader saves it.
        using (var probe = new S3Store(store))
        {
            var room = probe.MaxKeyBytes - System.Text.Encoding.UTF8.GetByteCount(StoreLayout.ArtifactsPrefix("evil-run", "exp0"));
            Assert.Equal(1024, System.Text.Encoding.UTF8.GetByteCount(prefix) + probe.MaxKeyBytes);
            longest = string.Join('/', Enumerable.Repeat(new string('n', 200), 4)) + "/" + new string('n', room - 805);
        }
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(longest) > GridNames.MaxArtifactPathBytes);
        var bad = new[] { "C:/evil", "a\\..\\..\\..\\dest-evil\\x", "tab\there", longest };
        foreach (var (path, text) in good) await Put(bucket, artifacts + path, text);
        foreach (var path in bad) await Put(bucket, artifacts + path, "evil");
        await Put(bucket, artifacts + "a", "a file named like the folder a/");

        // Every key really is in the bucket as written (the SDK did not normalise them away).
        var listed = (GridArtifact[])Run("@(Get-GridArtifact evil-run -Store $args[0])", store).Select(o => (GridArtifact)o).ToArray();
        foreach (var path in bad.Concat(good.Keys).Append("a")) Assert.Contains(listed, a => a.Path == path);

        var jail = _temp.Sub("jail");
        var dest = Path.Combine(jail, "dest");
        var (output, errors) = RunWithErrors("Save-GridArtifact evil-run -Store $args[0] -Destination $args[1] -PassThru", store, dest);
        var refused = errors.Where(e => e.FullyQualifiedErrorId.StartsWith("UnsafeArtifactPath")).ToList();
        Assert.Equal(bad.Length, refused.Count);
        Assert.All(refused, e => Assert.Equal(ErrorCategory.SecurityError, e.CategoryInfo.Category));
        var conflict = Assert.Single(errors, e => e.FullyQualifiedErrorId.StartsWith("PathConflict"));
        Assert.Equal(ErrorCategory.ResourceExists, conflict.CategoryInfo.Category);
        Assert.Contains("'a/'", conflict.Exception.Message);
        Assert.Equal(bad.Length + 1, errors.Count);

        // What is saved is exactly the good artifacts, byte for byte, and nothing else anywhere under the jail.
        Assert.Equal(good.Count, output.Count);
        var expected = good.Keys.Select(p => Path.Combine(dest, "evil-run", "exp0", p.Replace('/', Path.DirectorySeparatorChar))).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, FilesUnder(jail));
        foreach (var (path, text) in good) Assert.Equal(text, File.ReadAllText(Path.Combine(dest, "evil-run", "exp0", path)));
        Assert.False(File.Exists("/etc/grid-evil"));
        Assert.False(Directory.Exists(Path.Combine(jail, "dest-evil")));
        Assert.DoesNotContain(FilesUnder(_temp.Path), f => !f.StartsWith(jail + Path.DirectorySeparatorChar));
    }

    [Fact]
    public async Task A_key_holding_a_control_character_is_refused_by_name_where_the_listing_carries_it_and_is_an_unreadable_listing_where_not()
    {
        var bucket = _s3.NewBucket();
        var store = _s3.StoreUri(bucket, "ctl");
        await Put(bucket, "ctl/runs/ctl-run/run.json", "{\"schema\":1,\"name\":\"ctl-run\"}");
        await Put(bucket, "ctl/runs/ctl-run/exp0/experiment.json", "{\"schema\":1,\"run\":\"ctl-run\",\"experiment\":\"exp0\",\"status\":\"Succeeded\"}");
        await Put(bucket, "ctl/runs/ctl-run/exp0/artifacts/bell\u0007.txt", "ding");
        await Put(bucket, "ctl/runs/ctl-run/exp0/artifacts/ok.txt", "fine");
        // What the server's listing does with the key, asked with the test's own client: Ceph's RADOS Gateway
        // (and AWS, asked for URL-encoded keys) carries it; s3rver writes it raw, which XML 1.0 cannot hold.
        bool carried;
        try
        {
            var listing = await _s3.Client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket, Prefix = "ctl/runs/ctl-run/exp0/artifacts/", Encoding = Amazon.S3.EncodingType.Url });
            carried = listing.S3Objects.Count == 2;
        }
        catch (System.Xml.XmlException)
        {
            carried = false;
        }
        var dest = _temp.Sub("ctl-dest");
        var (output, errors) = RunWithErrors("Save-GridArtifact ctl-run -Store $args[0] -Destination $args[1] -PassThru", store, dest);
        var error = Assert.Single(errors);
        if (carried)
        {
            // The name comes back as written, and the names' rule (no control character) refuses it by name; the rest is saved.
            Assert.StartsWith("UnsafeArtifactPath", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.SecurityError, error.CategoryInfo.Category);
            Assert.Contains("control character", error.Exception.Message);
            Assert.Equal(new[] { Path.Combine(dest, "ctl-run", "exp0", "ok.txt") }, FilesUnder(dest));
            Assert.Single(output);
        }
        else
        {
            Assert.StartsWith("UnreadableListing", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
            Assert.Contains("control character", error.Exception.Message);
            Assert.False(Directory.Exists(dest));
        }
    }

    private async Task Put(string bucket, string key, string text)
    {
        try { await _s3.Client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, ContentBody = text, UseChunkEncoding = false }); }
        catch (Exception ex) { throw new InvalidOperationException($"Could not put '{key}': {ex.Message}", ex); }
    }

    [Fact]
    public void A_file_and_a_folder_of_one_name_the_folder_is_saved_and_the_file_is_a_PathConflict_error()
    {
        // A folder store cannot hold both either; a listing can still be handed such artifacts (another store, a hand-made list).
        var src = _temp.Sub("src-conflict");
        _temp.WriteFile("src-conflict/a/b", "inside"u8.ToArray());
        _temp.WriteFile("src-conflict/c.txt", "other"u8.ToArray());
        Run("Import-GridArtifact -Path $args[0] -Run clash-run | Out-Null", src);
        var inside = (GridArtifact)Run("Get-GridArtifact clash-run -Path a/b")[0];
        var clash = new GridArtifact(inside.Run, inside.Experiment, "a", inside.Store) { Size = 6 };
        var dest = _temp.Sub("clash-dest");
        var (output, errors) = RunWithErrors("$args[1], (Get-GridArtifact clash-run) | Save-GridArtifact -Destination $args[0] -PassThru", dest, clash);
        var error = Assert.Single(errors);
        Assert.StartsWith("PathConflict", error.FullyQualifiedErrorId);
        Assert.Contains("clash-run-exp0", error.Exception.Message);
        Assert.Equal(2, output.Count);
        Assert.Equal("inside", File.ReadAllText(Path.Combine(dest, "clash-run", "exp0", "a", "b")));
    }

    [Theory]
    [InlineData("{ \"schema\": 1, \"run\": ")]                                  // cut short
    [InlineData("\u0000\u0001binary")]                                          // not JSON at all
    [InlineData("{ \"schema\": 99, \"run\": \"damaged-run\", \"experiment\": \"exp0\" }")] // a future schema
    [InlineData("[1, 2, 3]")]                                                   // JSON, wrong shape
    [InlineData("null")]
    public void A_damaged_or_future_experiment_record_is_InvalidData_naming_its_key_and_the_other_experiments_still_list(string content)
    {
        var src = _temp.Sub("src-damaged");
        _temp.WriteFile("src-damaged/m.txt", "m"u8.ToArray());
        Run("Import-GridArtifact -Path $args[0] -Run damaged-run -Experiment exp0 | Out-Null; Import-GridArtifact -Path $args[0] -Run damaged-run -Experiment exp1 | Out-Null", src);
        File.WriteAllText(Path.Combine(_temp.Sub("store"), "runs", "damaged-run", "exp0", "experiment.json"), content);
        var (output, errors) = RunWithErrors("Get-GridExperiment damaged-run");
        Assert.Equal("exp1", ((GridExperiment)Assert.Single(output)).Experiment);
        var error = Assert.Single(errors);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.Contains("runs/damaged-run/exp0/experiment.json", error.Exception.Message);
    }

    [Fact]
    public void A_damaged_manifest_is_reported_and_the_artifacts_still_list_and_save_checked_by_size()
    {
        var src = _temp.Sub("src-manifest");
        _temp.WriteFile("src-manifest/m.txt", "measured"u8.ToArray());
        Run("Import-GridArtifact -Path $args[0] -Run manifest-run | Out-Null", src);
        File.WriteAllText(Path.Combine(_temp.Sub("store"), "runs", "manifest-run", "exp0", "manifest.json"), "{ \"schema\": 3 }");
        var (output, errors) = RunWithErrors("Get-GridArtifact manifest-run");
        Assert.Equal("m.txt", ((GridArtifact)Assert.Single(output)).Path);
        Assert.Null(((GridArtifact)output[0]).Sha256);
        Assert.Contains("manifest.json", Assert.Single(errors).Exception.Message);
    }

    [Fact]
    public void Set_GridStore_tries_an_S3_store_and_refuses_one_it_cannot_use_unless_Force_saves_it_with_a_warning()
    {
        var savedConfig = Environment.GetEnvironmentVariable("GRID_CONFIG_HOME");
        var config = _temp.Sub("config-s3");
        var file = Path.Combine(config, "config.json");
        Environment.SetEnvironmentVariable("GRID_CONFIG_HOME", config);
        try
        {
            var missing = _s3.StoreUri("no-such-" + Guid.NewGuid().ToString("N")[..12], "ml");
            var (_, errors) = RunWithErrors("Set-GridStore $args[0]", missing);
            var error = Assert.Single(errors);
            Assert.StartsWith("BucketNotFound", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
            Assert.Contains("does not exist", error.Exception.Message);
            Assert.Contains("-Force", error.Exception.Message);
            Assert.False(File.Exists(file));

            // -Force saves it anyway, and says it could not be used.
            var (warned, forcedErrors) = RunWithErrors("Set-GridStore $args[0] -Force 3>&1", missing);
            Assert.Empty(forcedErrors);
            var warning = Assert.IsType<WarningRecord>(Assert.Single(warned));
            Assert.Contains("could not be used", warning.Message);
            Assert.Contains("does not exist", warning.Message);
            Assert.Equal(missing.TrimEnd('/'), SavedStore(file));

            // A bucket that is there is saved without a word.
            var good = _s3.StoreUri(_s3.NewBucket(), "ml");
            Assert.Empty(Run("Set-GridStore $args[0] 3>&1", good));
            Assert.Equal(good.TrimEnd('/'), SavedStore(file));
        }
        finally { Environment.SetEnvironmentVariable("GRID_CONFIG_HOME", savedConfig); }
    }

    private static string? SavedStore(string file)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(file));
        return doc.RootElement.GetProperty("store").GetString();
    }

    [Fact]
    public void Save_into_a_destination_that_is_a_file_is_one_error_naming_it_and_nothing_is_written()
    {
        var src = _temp.Sub("src-many");
        for (var i = 0; i < 40; i++) _temp.WriteFile($"src-many/d{i % 4}/f{i}.txt", System.Text.Encoding.UTF8.GetBytes($"file {i}"));
        Run("Import-GridArtifact -Path $args[0] -Run many-run | Out-Null", src);
        var dest = Path.Combine(_temp.Path, "dest-is-a-file");
        File.WriteAllText(dest, "keep");
        foreach (var target in new[] { dest, Path.Combine(dest, "below") })
        {
            var (output, errors) = RunWithErrors("Save-GridArtifact many-run -Destination $args[0] -PassThru", target);
            Assert.Empty(output);
            var error = Assert.Single(errors);
            Assert.StartsWith("DestinationNotFolder", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.WriteError, error.CategoryInfo.Category);
            Assert.Contains($"'{target}'", error.Exception.Message);
            Assert.Contains($"'{dest}' is a file", error.Exception.Message);
        }
        Assert.Equal("keep", File.ReadAllText(dest));
        Assert.Equal(new[] { dest }, FilesUnder(_temp.Path).Where(f => !f.StartsWith(src + Path.DirectorySeparatorChar) && !f.StartsWith(_temp.Sub("store") + Path.DirectorySeparatorChar)));
    }

    [Theory]
    [InlineData("param([double] $lr = 0.01, [int] $epochs = 3)\n'x' > out.txt", "@{ lr = 0.1; batch = 32, 64 }", "-batch", "it takes -lr, -epochs")]
    [InlineData("'no param block' > out.txt", "@{ batch = 32, 64 }", "-batch", "it takes no named parameters")]
    [InlineData("[CmdletBinding()]\nparam([Alias('learning')] [double] $lr)\n$lr > out.txt", "@{ learning = 0.1; batch = 32, 64; seed = 1 }", "-batch, -seed", "it takes -lr")]
    public void A_ps1_script_given_parameters_it_does_not_take_is_refused_naming_them_before_anything_is_created(string script, string parameters, string unknown, string takes)
    {
        var path = Path.Combine(Directory.CreateDirectory(_temp.Sub("scripts")).FullName, Guid.NewGuid().ToString("N") + ".ps1");
        File.WriteAllText(path, script);
        var work = Path.Combine(_temp.Path, "work-unknown");
        var (output, errors) = RunWithErrors($"Start-GridRun -FilePath $args[0] -Parameter {parameters} -WorkingRoot $args[1] -Name unknown-params", path, work);
        Assert.Empty(output);
        var error = Assert.Single(errors);
        Assert.StartsWith("UnknownScriptParameter", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Contains($"has no parameter {unknown}:", error.Exception.Message);
        Assert.Contains(takes, error.Exception.Message);
        Assert.Contains("Nothing was started", error.Exception.Message);
        // Nothing in the store, and no working folder.
        Assert.Empty(Run("Get-GridRun"));
        Assert.Empty(FilesUnder(_temp.Sub("store")));
        Assert.False(Directory.Exists(work));
    }

    [Theory]
    [InlineData("[CmdletBinding()]\nparam([double] $lr)", "ea", true)]            // a common parameter's alias
    [InlineData("[CmdletBinding()]\nparam([double] $lr)", "ErrorAction", true)]
    [InlineData("[CmdletBinding()]\nparam([double] $lr)\ndynamicparam { }", "batch", true)] // dynamic: known only when it runs
    [InlineData("param([double] $lr)", "ea", false)]                                 // not advanced: no common parameters
    [InlineData("[CmdletBinding()]\nparam([double] $lr)", "batch", false)]
    public void The_ps1_check_takes_what_pwsh_binds(string script, string name, bool takes)
    {
        var path = Path.Combine(Directory.CreateDirectory(_temp.Sub("scripts")).FullName, Guid.NewGuid().ToString("N") + ".ps1");
        File.WriteAllText(path, script);
        Assert.Equal(takes, GridArtifacts.Commands.StartGridRunCommand.ScriptParameters.Read(path).Takes(name));
    }

    [Theory]
    [InlineData("Get-GridRun my-run-exp1")]
    [InlineData("Remove-GridRun my-run-exp1 -Confirm:$false")]
    [InlineData("Protect-GridRun my-run-exp1")]
    public void An_experiment_id_where_a_run_name_goes_is_called_an_experiment_id_with_the_command_that_shows_it(string command)
    {
        var src = _temp.Sub("src-expid");
        _temp.WriteFile("src-expid/m.txt", "m"u8.ToArray());
        Run("Import-GridArtifact -Path $args[0] -Run my-run -Experiment exp1 | Out-Null", src);
        var (output, errors) = RunWithErrors(command);
        Assert.Empty(output);
        var error = Assert.Single(errors);
        Assert.StartsWith("InvalidRunName", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Contains("'my-run-exp1' is an experiment id", error.Exception.Message);
        Assert.Contains("Get-GridExperiment my-run-exp1", error.Exception.Message);
        Assert.DoesNotContain("not a valid run name", error.Exception.Message);
        // What the message says to run shows it; nothing was removed or protected.
        var shown = (GridExperiment)Assert.Single(Run("Get-GridExperiment my-run-exp1"));
        Assert.Equal("exp1", shown.Experiment);
        Assert.False(shown.Protected);
    }

    [Theory]
    [InlineData("Invoke-GridExperiment -Run 'Bad_Name' -- true", "InvalidRunName")]
    [InlineData("Invoke-GridExperiment -Run ('r' * 64) -- true", "InvalidRunName")]
    [InlineData("Invoke-GridExperiment -Run 'ends-exp3' -- true", "InvalidRunName")]
    [InlineData("Invoke-GridExperiment -Run 'ok-run' -Experiment 'exp01' -- true", "InvalidExperimentName")]
    [InlineData("Import-GridArtifact -Path . -Run '../up'", "InvalidRunName")]
    [InlineData("Save-GridArtifact ''", "ParameterArgumentValidationError")]
    [InlineData("Get-GridRun ''", "ParameterArgumentValidationError")]
    [InlineData("New-GridArtifactLink some-run -Expiry 0", "InvalidExpiry")]
    [InlineData("New-GridArtifactLink some-run -Expiry '-00:00:01'", "InvalidExpiry")]
    [InlineData("New-GridArtifactLink some-run -Expiry ([TimeSpan]::MaxValue)", "InvalidExpiry")]
    [InlineData("New-GridArtifactLink some-run -Expiry ([TimeSpan]::FromDays(366))", "InvalidExpiry")]
    [InlineData("Get-GridRun -Store 's3:/bucket/ml'", "InvalidStoreUri")]
    [InlineData("Get-GridRun -Store 's3:bucket'", "InvalidStoreUri")]
    [InlineData("Get-GridRun -Store 's3a://bucket/ml'", "InvalidStoreUri")]
    [InlineData("Get-GridRun -Store 'https://bucket.example/ml'", "InvalidStoreUri")]
    [InlineData("Import-GridArtifact -Path . -Run typo-run -Store 's3:/bucket/ml'", "InvalidStoreUri")]
    [InlineData("Set-GridStore 's3:/bucket/ml'", "InvalidStoreUri")]
    [InlineData("Copy-GridRun some-run -Destination 's3:/bucket/ml'", "InvalidStoreUri")]
    [InlineData("Get-GridRun -Store 's3://bucket/p?colour=blue'", "InvalidStoreUri")]
    public void Invalid_names_lifetimes_and_store_uris_are_refused_with_a_typed_error_and_write_nothing(string command, string errorId)
    {
        var savedConfig = Environment.GetEnvironmentVariable("GRID_CONFIG_HOME");
        Environment.SetEnvironmentVariable("GRID_CONFIG_HOME", _temp.Sub("config")); // a Set-GridStore that got through would write here
        var before = FilesUnder(_temp.Path);
        List<ErrorRecord> errors;
        try { errors = RunWithErrors(command).Errors; }
        finally { Environment.SetEnvironmentVariable("GRID_CONFIG_HOME", savedConfig); }
        var error = Assert.Single(errors);
        Assert.StartsWith(errorId, error.FullyQualifiedErrorId);
        Assert.NotEqual(ErrorCategory.NotSpecified, error.CategoryInfo.Category);
        Assert.Equal(before, FilesUnder(_temp.Path));
        Assert.False(Directory.Exists(_temp.Sub("s3:")));
    }
}
