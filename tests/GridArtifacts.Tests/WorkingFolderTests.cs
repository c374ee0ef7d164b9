using System.Management.Automation;
using System.Security.Cryptography;
using System.Text.Json;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>Remove-GridWorkingDirectory and the run folders Start-GridRun makes, against the folder store and s3rver.</summary>
[Collection(S3Collection.Name)]
public sealed class WorkingFolderTests : IDisposable
{
    private readonly S3ServerFixture _s3;
    private readonly TempDir _temp = new();
    private readonly ModuleHost _host;

    public WorkingFolderTests(S3ServerFixture s3)
    {
        _s3 = s3;
        _host = new ModuleHost(_temp.Sub("store"), _temp.Path);
    }

    public void Dispose()
    {
        _host.Dispose();
        _temp.Dispose();
    }

    private string Store(string kind) => kind == "s3" ? _s3.StoreUri(_s3.NewBucket(), "folders") : _temp.Sub("store-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>A run folder as Start-GridRun makes it (&lt;root&gt;/&lt;run&gt;.&lt;random&gt;, with its plan), and its exp0 folder.</summary>
    private static string RunFolder(string root, string run, string store)
    {
        var folder = Path.Combine(root, run + "." + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant());
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "plan.json"), JsonSerializer.Serialize(new { Run = run, Store = store, KeepWorkingDirectory = false, Experiments = Array.Empty<object>() }));
        return Path.Combine(folder, "exp0");
    }

    private static string Sha(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public void A_folder_its_agent_kept_because_a_file_in_it_is_not_in_the_store_is_left_without_Force(string kind)
    {
        var store = Store(kind);
        var root = _temp.Sub("work-" + kind);
        // A folder nested deeper than an artifact's path may be: nothing in it can be stored, so the agent keeps the folder.
        var work = RunFolder(root, "deep-run", store);
        var deep = string.Join('/', Enumerable.Range(0, 4).Select(i => new string((char)('a' + i), 250)));
        var (_, errors) = _host.Invoke("Invoke-GridExperiment -Run deep-run -Store $args[0] -WorkingDirectory $args[1] -RemoveWorkingDirectory -WarningAction SilentlyContinue -- bash -c $args[2]",
            new object[] { store, work, $"mkdir -p {deep} && head -c 10000 /dev/urandom > {deep}/weights.bin && echo ok > ok.txt" });
        Assert.Empty(errors);
        var weights = Path.Combine(work, deep, "weights.bin");
        var before = Sha(weights);

        var (output, removeErrors) = _host.Invoke("Remove-GridWorkingDirectory -WorkingRoot $args[0] -Confirm:$false 3>&1", new object[] { root });
        Assert.Empty(removeErrors);
        Assert.Equal(before, Sha(weights));
        var warning = Assert.IsType<WarningRecord>(Assert.Single(output).BaseObject);
        Assert.Contains("deep-run-exp0", warning.Message);
        Assert.Contains("-Force", warning.Message);

        // -Force removes it.
        _host.Run("Remove-GridWorkingDirectory -WorkingRoot $args[0] -Force -Confirm:$false", root);
        Assert.Empty(Directory.EnumerateDirectories(root));
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task A_run_with_an_experiment_record_that_cannot_be_read_is_left_even_with_Force(string kind)
    {
        var store = Store(kind);
        var root = _temp.Sub("work-unread-" + kind);
        var work = RunFolder(root, "unread-run", store);
        _host.Run("Invoke-GridExperiment -Run unread-run -Store $args[0] -WorkingDirectory $args[1] -- bash -c 'echo ok > ok.txt' | Out-Null", store, work);
        _host.Run("Invoke-GridExperiment -Run unread-run -Experiment exp1 -Store $args[0] -WorkingDirectory $args[1] -- bash -c 'echo ok > ok.txt' | Out-Null", store, Path.Combine(Path.GetDirectoryName(work)!, "exp1"));
        // exp1's record cannot be read now (it may be running): whether the run has ended is not known.
        var catalog = Catalogs.Open(store);
        await catalog.Store.PutAsync(StoreLayout.ExperimentRecordKey("unread-run", "exp1"), "{ not json"u8.ToArray(), default);

        var (output, errors) = _host.Invoke("Remove-GridWorkingDirectory -WorkingRoot $args[0] -Force -Confirm:$false 3>&1", new object[] { root });
        Assert.Empty(errors);
        Assert.True(File.Exists(Path.Combine(root, Path.GetFileName(Path.GetDirectoryName(work)!), "exp1", "ok.txt")));
        var warning = Assert.IsType<WarningRecord>(Assert.Single(output).BaseObject);
        Assert.Contains("could not be read", warning.Message);
    }
    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public void A_folder_whose_store_holds_no_runs_at_all_is_left_without_Force_not_taken_for_a_removed_run(string kind)
    {
        // The store as the plan names it is not there now: a folder store on a disk not mounted, a bucket of another endpoint.
        var store = kind == "s3" ? _s3.StoreUri("no-such-" + Guid.NewGuid().ToString("N")[..12], "ml") : _temp.Sub("unmounted-" + Guid.NewGuid().ToString("N")[..8]);
        var root = _temp.Sub("work-gone-" + kind);
        var work = RunFolder(root, "away-run", store);
        Directory.CreateDirectory(work);
        File.WriteAllText(Path.Combine(work, "model.ckpt"), "not in any store");

        var (output, errors) = _host.Invoke("Remove-GridWorkingDirectory -WorkingRoot $args[0] -Confirm:$false 3>&1", new object[] { root });
        Assert.Empty(errors);
        Assert.Equal("not in any store", File.ReadAllText(Path.Combine(work, "model.ckpt")));
        var warning = Assert.IsType<WarningRecord>(Assert.Single(output).BaseObject);
        Assert.Contains("holds no runs", warning.Message);
        Assert.Contains("-Force", warning.Message);

        // -Force removes it; and a store that holds other runs (this one was removed) needs no -Force.
        _host.Run("Remove-GridWorkingDirectory -WorkingRoot $args[0] -Force -Confirm:$false", root);
        Assert.Empty(Directory.EnumerateDirectories(root));
        var other = Store(kind);
        _host.Run("Invoke-GridExperiment -Run other-run -Store $args[0] -WorkingDirectory $args[1] -- bash -c 'echo ok > ok.txt' | Out-Null", other, _temp.Sub("other-" + kind));
        RunFolder(root, "removed-run", other);
        _host.Run("Remove-GridWorkingDirectory -WorkingRoot $args[0] -Confirm:$false", root);
        Assert.Empty(Directory.EnumerateDirectories(root));
    }
}
