using System.Text.Json;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Launch;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The plan a run's experiments are started from (plan.json): written and read back by one typed
/// shape, and read from what earlier releases wrote; the sweep and the command lines it holds.
/// </summary>
public sealed class LaunchPlanTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_plan_reads_back_as_it_was_written()
    {
        var plan = new RunPlan
        {
            Run = "brave-otter-7",
            Store = "s3://bucket/prefix",
            ThrottleLimit = 3,
            ArtifactPath = new[] { "/data/out", "/tmp/ü x" },
            KeepWorkingDirectory = true,
            Experiments = new[]
            {
                new PlannedExperiment { Experiment = "exp0", WorkingDirectory = "/w/r.0a/exp0", Parameters = new Dictionary<string, string> { ["lr"] = "0.1" }, Command = new[] { "python3", "train.py", "--lr", "0.1" } },
                new PlannedExperiment { Experiment = "exp1", WorkingDirectory = "/w/r.0a/exp1", Parameters = new Dictionary<string, string> { ["lr"] = "0.01" }, Command = new[] { "/bin/sh", "-c", "echo 'a b'" } },
            },
        };
        var path = _temp.Sub("plan.json");
        plan.Write(path);
        var read = RunPlan.Read(path);

        Assert.Equal(plan.Run, read.Run);
        Assert.Equal(plan.Store, read.Store);
        Assert.Equal(3, read.ThrottleLimit);
        Assert.Equal(plan.ArtifactPath, read.ArtifactPath);
        Assert.True(read.KeepWorkingDirectory);
        Assert.Equal(2, read.Experiments.Count);
        Assert.Equal("exp1", read.Experiment(1).Experiment);
        Assert.Equal("/w/r.0a/exp1", read.Experiment(1).WorkingDirectory);
        Assert.Equal("0.01", read.Experiment(1).Parameters["lr"]);
        Assert.Equal(new[] { "/bin/sh", "-c", "echo 'a b'" }, read.Experiment(1).Command);
        Assert.Throws<ArgumentOutOfRangeException>(() => read.Experiment(2));
    }

    [Fact]
    public void A_plan_keeps_the_property_names_that_the_scripts_and_earlier_releases_read()
    {
        var path = _temp.Sub("plan.json");
        new RunPlan { Run = "r", Store = "/s", Experiments = new[] { new PlannedExperiment { Experiment = "exp0", WorkingDirectory = "/w", Command = new[] { "x" } } } }.Write(path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(new[] { "Run", "Store", "ThrottleLimit", "ArtifactPath", "KeepWorkingDirectory", "Experiments" }, names);
        var e = doc.RootElement.GetProperty("Experiments")[0];
        Assert.Equal(new[] { "Experiment", "WorkingDirectory", "Parameters", "Command" }, e.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void A_plan_that_0_4_1_wrote_is_read_and_one_without_KeepWorkingDirectory_keeps_nothing_asked()
    {
        // As Start-GridRun 0.4.1 wrote it: an anonymous object, no KeepWorkingDirectory, one line.
        var folder = Directory.CreateDirectory(_temp.Sub("old-run")).FullName;
        var old = JsonSerializer.Serialize(new
        {
            Run = "old-run",
            Store = "/home/u/.grid/store",
            ThrottleLimit = 4,
            ArtifactPath = Array.Empty<string>(),
            Experiments = new[] { new { Experiment = "exp0", WorkingDirectory = Path.Combine(folder, "exp0"), Parameters = new Dictionary<string, string> { ["epochs"] = "2" }, Command = new[] { "pwsh", "-File", "t.ps1", "-epochs", "2" } } },
        });
        File.WriteAllText(Path.Combine(folder, WorkingFolders.PlanFile), old);

        var plan = RunPlan.Read(Path.Combine(folder, WorkingFolders.PlanFile));
        Assert.Equal("old-run", plan.Run);
        Assert.False(plan.KeepWorkingDirectory);
        Assert.Equal("2", plan.Experiment(0).Parameters["epochs"]);
        Assert.Equal(("old-run", "/home/u/.grid/store", false), WorkingFolders.ReadPlan(folder));
    }

    [Fact]
    public void A_plan_written_by_hand_in_another_case_and_without_lists_is_read()
    {
        var path = _temp.Sub("plan.json");
        File.WriteAllText(path, "{ \"run\": \"hand-made\", \"store\": \"/s\", \"experiments\": [] }");
        var plan = RunPlan.Read(path);
        Assert.Equal("hand-made", plan.Run);
        Assert.Empty(plan.Experiments);
        Assert.Empty(plan.ArtifactPath);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{ \"Store\": \"/s\" }")]
    [InlineData("{ \"Run\": 3, \"Store\": \"/s\" }")]
    public void What_is_not_a_plan_is_refused_as_such(string text)
    {
        var path = _temp.Sub("plan.json");
        File.WriteAllText(path, text);
        Assert.Throws<InvalidDataException>(() => RunPlan.Read(path));
        Assert.Null(WorkingFolders.ReadPlan(_temp.Path));
    }

    [Fact]
    public void A_sweep_is_each_combination_once_keys_in_name_order()
    {
        var sweep = Sweep.Expand(new Dictionary<string, IReadOnlyList<string>> { ["lr"] = new[] { "0.1", "0.01" }, ["batch"] = new[] { "32", "64" }, ["seed"] = new[] { "1" } });
        Assert.Equal(4, sweep.Count);
        Assert.Equal(new[] { "batch", "lr", "seed" }, sweep[0].Keys);
        Assert.Equal(new[] { "32/0.1", "32/0.01", "64/0.1", "64/0.01" }, sweep.Select(p => $"{p["batch"]}/{p["lr"]}"));
        Assert.Single(Sweep.Expand(null));
        Assert.Equal("0.1, 0.01", Sweep.ToText(new Dictionary<string, IReadOnlyList<string>> { ["lr"] = new[] { "0.1", "0.01" } })["lr"]);
    }

    [Fact]
    public void Commands_take_parameters_as_the_product_passed_them()
    {
        var p = new Dictionary<string, string> { ["lr"] = "0.1", ["name"] = "a b" };
        Assert.Equal(new[] { "/bin/sh", "-c", "train --rate 0.1 --name a b" }, Sweep.ForCommand("train --rate {lr} --name {name}", p, windows: false));
        Assert.Equal(new[] { "/bin/sh", "-c", "train --lr 0.1 --name a b" }, Sweep.ForCommand("train", p, windows: false));
        Assert.Equal(new[] { "cmd.exe", "/c", "train --lr 0.1 --name a b" }, Sweep.ForCommand("train", p, windows: true));
        Assert.Equal(new[] { "dotnet", "pwsh.dll", "-NoProfile", "-NonInteractive", "-File", "/s/t.ps1", "-lr", "0.1", "-name", "a b" }, Sweep.ForScript("/s/t.ps1", p, new[] { "dotnet", "pwsh.dll" }));
        Assert.Equal(new[] { "python3", "/s/t.py", "--lr", "0.1", "--name", "a b" }, Sweep.ForScript("/s/t.py", p, new[] { "pwsh" }));
        Assert.Equal(new[] { "/s/t.sh", "--lr", "0.1", "--name", "a b" }, Sweep.ForScript("/s/t.sh", p, new[] { "pwsh" }));
    }
}
