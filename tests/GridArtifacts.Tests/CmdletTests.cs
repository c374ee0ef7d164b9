using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using GridArtifacts.Commands;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The cmdlets hosted in-process with the PowerShell SDK, against a folder store in a temp directory.</summary>
public sealed class CmdletTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly ModuleHost _host;
    private readonly string _store;

    public CmdletTests()
    {
        _store = _temp.Sub("store");
        _host = new ModuleHost(_store);
    }

    public void Dispose()
    {
        _host.Dispose();
        _temp.Dispose();
    }

    private (Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors) RunWithErrors(string script, params object[] args) => _host.Invoke(script, args);

    private Collection<PSObject> Run(string script, params object[] args) => _host.Run(script, args);

    /// <summary>Two runs: "older-run" (exp0, exp1, both with metrics.csv) and "newer-run" (exp0).</summary>
    private Dictionary<string, string> Seed()
    {
        var hashes = new Dictionary<string, string>();
        foreach (var (run, exp, seed) in new[] { ("older-run", "exp0", 1), ("older-run", "exp1", 2), ("newer-run", "exp0", 3) })
        {
            var src = _temp.Sub("src", run, exp);
            var files = new Dictionary<string, byte[]>
            {
                ["metrics.csv"] = TestBytes.Random(1000 + seed, seed),
                ["ckpt/model.pt"] = TestBytes.Random(300_000 + seed, seed + 10),
                ["plots/loss.png"] = TestBytes.Random(5000, seed + 20),
            };
            foreach (var (path, data) in files)
            {
                _temp.WriteFile($"src/{run}/{exp}/{path}", data);
                hashes[$"{run}/{exp}/{path}"] = TestBytes.Sha256(data);
            }
            Run("Import-GridArtifact -Path $args[0] -Run $args[1] -Experiment $args[2] | Out-Null", src, run, exp);
            if (run == "older-run" && exp == "exp1") Thread.Sleep(20);
        }
        return hashes;
    }

    [Fact]
    public void The_whole_pipeline_saves_every_artifact_byte_exact_without_overwrites()
    {
        var hashes = Seed();
        var dest = _temp.Sub("dest");
        var results = Run("Get-GridRun | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -Destination $args[0] -PassThru", dest);
        Assert.Equal(9, results.Count);
        Assert.All(results, r => Assert.Equal(GridSaveAction.Downloaded, ((GridSaveResult)r.BaseObject).Action));
        foreach (var (key, sha) in hashes)
        {
            var local = Path.Combine(new[] { dest }.Concat(key.Split('/')).ToArray());
            Assert.Equal(sha, TestBytes.Sha256(local));
        }
        // Same-named files of two experiments stay apart.
        Assert.NotEqual(TestBytes.Sha256(Path.Combine(dest, "older-run", "exp0", "metrics.csv")),
                        TestBytes.Sha256(Path.Combine(dest, "older-run", "exp1", "metrics.csv")));
        Assert.Empty(Directory.EnumerateFiles(dest, "*.part", SearchOption.AllDirectories));
        Assert.False(Directory.Exists(Path.Combine(dest, TransferEngine.PartialFolder)));

        var again = Run("Save-GridArtifact older-run -Destination $args[0] -PassThru", dest);
        Assert.Equal(6, again.Count);
        Assert.All(again, r => Assert.Equal(GridSaveAction.Skipped, ((GridSaveResult)r.BaseObject).Action));
        Assert.Empty(Run("Save-GridArtifact older-run -Destination $args[0]", dest));
    }

    [Fact]
    public void Destination_defaults_to_grid_artifacts_under_the_PowerShell_location()
    {
        Seed();
        var here = _temp.Sub("cwd");
        Directory.CreateDirectory(here);
        Run("Set-Location -LiteralPath $args[0]; Save-GridArtifact newer-run-exp0 -Path metrics.csv; Save-GridArtifact older-run -Experiment exp1 -Destination out", here);
        Assert.True(File.Exists(Path.Combine(here, "grid_artifacts", "newer-run", "exp0", "metrics.csv")));
        Assert.True(File.Exists(Path.Combine(here, "out", "older-run", "exp1", "ckpt", "model.pt")));
        Assert.False(Directory.Exists(Path.Combine(here, "out", "older-run", "exp0")));
        Assert.False(Directory.Exists(Path.Combine(Environment.CurrentDirectory, "grid_artifacts", "newer-run")));
    }

    [Fact]
    public void Runs_list_newest_first_and_filter_by_name_and_status()
    {
        Seed();
        var all = Run("Get-GridRun").Select(o => ((GridRun)o.BaseObject).Name).ToList();
        Assert.Equal(new[] { "newer-run", "older-run" }, all);
        Assert.Equal("older-run", ((GridRun)Assert.Single(Run("Get-GridRun old*")).BaseObject).Name);
        Assert.Equal(2, Run("Get-GridRun -Finished").Count);
        Assert.Empty(Run("Get-GridRun -Active"));
        Assert.Equal(2, Run("Get-GridRun -Status Succeeded").Count);
        Assert.Empty(Run("Get-GridRun -Status Failed, Lost"));
        Assert.Empty(Run("Get-GridRun nothing-like-this*"));
    }

    [Fact]
    public void Unknown_runs_and_experiments_are_ObjectNotFound_and_the_rest_is_listed()
    {
        Seed();
        var (runs, errors) = RunWithErrors("Get-GridRun older-run, missing-run");
        Assert.Equal("older-run", ((GridRun)Assert.Single(runs).BaseObject).Name);
        var error = Assert.Single(errors);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
        Assert.StartsWith("RunNotFound", error.FullyQualifiedErrorId);
        Assert.Contains("missing-run", error.Exception.Message);
        Assert.Equal("missing-run", error.TargetObject);

        var (exps, expErrors) = RunWithErrors("Get-GridExperiment older-run-exp4, newer-run");
        Assert.Single(exps);
        var expError = Assert.Single(expErrors);
        Assert.Equal(ErrorCategory.ObjectNotFound, expError.CategoryInfo.Category);
        Assert.StartsWith("ExperimentNotFound", expError.FullyQualifiedErrorId);

        var (_, badName) = RunWithErrors("Get-GridArtifact 'Bad_Name'");
        Assert.Equal(ErrorCategory.InvalidArgument, Assert.Single(badName).CategoryInfo.Category);
    }

    [Fact]
    public void Compare_takes_experiments_from_the_pipeline_and_reports_each_input_on_its_own()
    {
        Seed();
        // Each of older-run's experiments against exp0: exp0 itself gives nothing, exp1 differs in every file.
        var rows = Run("Get-GridExperiment older-run | Compare-GridExperiment older-run-exp0 -Kind Artifact").Select(o => (GridComparison)o.BaseObject).ToList();
        Assert.Equal(new[] { "ckpt/model.pt", "metrics.csv", "plots/loss.png" }, rows.Select(r => r.Name));
        Assert.All(rows, r => Assert.Equal(("older-run-exp0", "older-run-exp1", "<>", true), (r.Reference, r.Difference, r.SideIndicator, r.HashCompared)));
        Assert.Equal((5000L, 5000L), (rows[2].ReferenceSize!.Value, rows[2].DifferenceSize!.Value)); // same size, another hash

        // A missing or mismatched input is its own error; the others are still compared.
        var (output, errors) = RunWithErrors("Compare-GridExperiment older-run-exp0 older-run-exp9, newer-run, older-run-exp1 -Kind Artifact");
        Assert.Equal(3, output.Count);
        Assert.Equal(new[] { "ExperimentNotFound", "CompareMismatch" }, errors.Select(e => e.FullyQualifiedErrorId.Split(',')[0]));
        Assert.Equal(ErrorCategory.InvalidArgument, errors[1].CategoryInfo.Category);

        // The reference is one run or experiment: a wildcard ends the command.
        var (none, wildcard) = _host.Invoke("Compare-GridExperiment 'older-*' newer-run", Array.Empty<object>(), terminatingAsError: true);
        Assert.Empty(none);
        Assert.Equal("WildcardNotSupported,GridArtifacts.Commands.CompareGridExperimentCommand", Assert.Single(wildcard).FullyQualifiedErrorId);
        // An artifact is neither: each piped one is refused, saying what is taken.
        var (_, artifacts) = RunWithErrors("Get-GridArtifact newer-run | Compare-GridExperiment newer-run-exp0");
        Assert.Equal(3, artifacts.Count);
        Assert.All(artifacts, e => Assert.Contains("a GridRun or a GridExperiment, not a GridArtifact", e.Exception.Message));
    }

    [Fact]
    public void Artifacts_filter_by_experiment_path_exclude_and_regex()
    {
        Seed();
        string[] Paths(string script) => Run(script).Select(o => ((GridArtifact)o.BaseObject).ExperimentId + "/" + ((GridArtifact)o.BaseObject).Path).ToArray();
        Assert.Equal(new[] { "older-run-exp1/ckpt/model.pt" }, Paths("Get-GridArtifact older-run-exp1 -Path *.pt"));
        Assert.Equal(new[] { "older-run-exp0/ckpt/model.pt", "older-run-exp1/ckpt/model.pt" }, Paths("Get-GridArtifact older-run -Path ckpt/*"));
        Assert.Equal(new[] { "older-run-exp1/metrics.csv", "older-run-exp1/plots/loss.png" }, Paths("Get-GridArtifact older-run -Experiment exp1 -Exclude *.pt"));
        Assert.Equal(new[] { "newer-run-exp0/metrics.csv", "newer-run-exp0/plots/loss.png" }, Paths("Get-GridArtifact newer-run -Match '\\.(csv|png)$'"));
        Assert.Equal(3, Run("Get-GridExperiment newer-run | Get-GridArtifact").Count);
        Assert.Equal(9, Run("Get-GridArtifact *").Count);

        var (_, errors) = RunWithErrors("Get-GridArtifact newer-run -Path no-such-file.txt");
        Assert.Equal(ErrorCategory.ObjectNotFound, Assert.Single(errors).CategoryInfo.Category);

    }

    [Fact]
    public void An_invalid_regular_expression_is_a_terminating_InvalidArgument_error()
    {
        Seed();
        var (output, errors) = RunWithErrors("Get-GridArtifact newer-run -Match '(unclosed'; 'next statement runs'");
        var error = Assert.Single(errors);
        Assert.Equal("InvalidMatchPattern,GridArtifacts.Commands.GetGridArtifactCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Equal("next statement runs", Assert.Single(output).BaseObject);
    }

    [Theory]
    [InlineData("../escape.txt")]
    [InlineData("../../escape.txt")]
    [InlineData("/tmp/escape.txt")]
    [InlineData("C:/escape.txt")]
    [InlineData("a\\..\\..\\..\\escape.txt")]
    [InlineData("ok/../../../escape.txt")]
    [InlineData("/../escape.txt")]
    [InlineData("//../escape.txt")]
    [InlineData("../../../dest-evil/escape.txt")] // a sibling "<dest>-evil" that a plain prefix check lets through
    public void Artifacts_whose_names_would_land_outside_the_destination_are_refused(string path)
    {
        Seed();
        var dest = _temp.Sub("jail", "dest");
        var good = (GridArtifact)Run("Get-GridArtifact newer-run-exp0 -Path metrics.csv")[0].BaseObject;
        // A store could hold any key; this is what a hostile or broken one would hand back.
        var bad = new GridArtifact(good.Run, good.Experiment, path, good.Store) { Size = 4 };
        var (output, errors) = RunWithErrors("$args[1], $args[2] | Save-GridArtifact -Destination $args[0] -PassThru", dest, bad, good);
        var error = Assert.Single(errors);
        Assert.Equal(ErrorCategory.SecurityError, error.CategoryInfo.Category);
        Assert.StartsWith("UnsafeArtifactPath", error.FullyQualifiedErrorId);
        Assert.Single(output); // the good artifact still arrives
        var everything = Directory.EnumerateFiles(_temp.Sub("jail"), "*", SearchOption.AllDirectories).ToList();
        Assert.Equal(new[] { Path.Combine(dest, "newer-run", "exp0", "metrics.csv") }, everything);
        Assert.False(File.Exists(_temp.Sub("escape.txt")));
        Assert.False(File.Exists(_temp.Sub("jail", "escape.txt")));
    }

    [Fact]
    public void A_stored_name_with_backslashes_is_listed_but_never_saved()
    {
        if (OperatingSystem.IsWindows()) return; // such a file cannot exist on Windows
        Seed();
        var artifacts = Path.Combine(_store, "runs", "newer-run", "exp0", "artifacts");
        File.WriteAllText(Path.Combine(artifacts, "..\\..\\evil.txt"), "evil");
        var listed = Run("Get-GridArtifact newer-run-exp0 -Path '*evil*'");
        Assert.Equal("..\\..\\evil.txt", ((GridArtifact)Assert.Single(listed).BaseObject).Path);
        var dest = _temp.Sub("dest2");
        var (output, errors) = RunWithErrors("Save-GridArtifact newer-run-exp0 -Destination $args[0] -PassThru", dest);
        Assert.Equal(3, output.Count);
        Assert.Equal(ErrorCategory.SecurityError, Assert.Single(errors).CategoryInfo.Category);
        Assert.DoesNotContain(Directory.EnumerateFiles(_temp.Path, "*evil*", SearchOption.AllDirectories), f => !f.StartsWith(_store));
    }

    [Fact]
    public void A_damaged_record_names_its_file_and_the_rest_is_listed()
    {
        Seed();
        // A run as 0.1.0 wrote it (no index keys beside its folder) is listed from its records.
        foreach (var key in Directory.GetFiles(Path.Combine(_store, "runs"), "older-run~*")) File.Delete(key);
        File.WriteAllText(Path.Combine(_store, "runs", "older-run", "run.json"), "{ truncated");
        var (runs, errors) = RunWithErrors("Get-GridRun");
        Assert.Equal("newer-run", ((GridRun)Assert.Single(runs).BaseObject).Name);
        var error = Assert.Single(errors);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.Contains("runs/older-run/run.json", error.Exception.Message);
    }

    [Fact]
    public void WhatIf_saves_nothing()
    {
        Seed();
        var dest = _temp.Sub("whatif");
        Run("Save-GridArtifact older-run -Destination $args[0] -WhatIf", dest);
        Assert.False(Directory.Exists(dest));
    }

    [Fact]
    public void Objects_carry_their_store_down_the_pipeline()
    {
        Seed();
        // Without the default -Store, the objects' Store property still routes every call to the temp store.
        var saved = Run("$PSDefaultParameterValues.Clear(); Get-GridRun -Store $args[0] | Get-GridArtifact | Save-GridArtifact -Destination $args[1] -PassThru",
            _store, _temp.Sub("dest3"));
        Assert.Equal(9, saved.Count);
    }

    [Fact]
    public void Stopping_a_save_cancels_it_and_leaves_no_partial_file()
    {
        var src = _temp.Sub("big-src");
        for (var i = 0; i < 4; i++) _temp.WriteFile($"big-src/f{i}.bin", TestBytes.Random(4_000_000, i));
        Run("Import-GridArtifact -Path $args[0] -Run slow-run | Out-Null", src);
        var dest = _temp.Sub("stopped");
        var before = Core.Transfer.TransferEngine.Shared.Options;
        // 1 MB/s: the 16 MB save would take 16 s; it is stopped after half a second.
        Core.Transfer.TransferEngine.Shared.Configure(before with { BandwidthLimit = 1_000_000 });
        try
        {
            using var ps = PowerShell.Create();
            ps.Runspace = _host.Runspace;
            ps.AddScript("Save-GridArtifact slow-run -Destination $args[0]").AddArgument(dest);
            var pending = ps.BeginInvoke();
            Thread.Sleep(500);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            ps.Stop();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"Stop took {clock.Elapsed}");
            Assert.True(pending.IsCompleted);
        }
        finally
        {
            Core.Transfer.TransferEngine.Shared.Configure(before);
        }
        var left = Directory.Exists(dest) ? Directory.EnumerateFiles(dest, "*", SearchOption.AllDirectories).ToList() : new List<string>();
        Assert.Empty(left);
    }
}
