using System.Diagnostics;
using System.Text;
using GridArtifacts.Core;
using GridArtifacts.Core.Launch;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;
using Xunit.Abstractions;

namespace GridArtifacts.Tests;

/// <summary>
/// grid-agent, the Native AOT executable build.ps1 stages in the module (agent/linux-x64), run as a
/// scheduler's task runs it: capture, exit codes, signals, a kill -9 and a restart, on the folder
/// store and on S3 (s3rver here; the RGW lane runs these on Ceph's RADOS Gateway).
/// </summary>
[Collection(S3Collection.Name)]
public sealed class AgentExecutableTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly S3ServerFixture _s3;
    private readonly ITestOutputHelper _output;

    public AgentExecutableTests(S3ServerFixture s3, ITestOutputHelper output)
    {
        _s3 = s3;
        _output = output;
    }

    public void Dispose() => _temp.Dispose();

    private string NewFolder(string name)
    {
        var path = _temp.Sub(name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    private string NewStore(string kind) => kind == "s3" ? _s3.StoreUri(_s3.NewBucket(), "agent") : NewFolder("store");

    /// <summary>Starts grid-agent with <paramref name="args"/>; its output is collected.</summary>
    private Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        // SIGINT and SIGTERM at their defaults, as a terminal or a scheduler starts it: a test run
        // started in the background (a shell's &) has SIGINT ignored, which every child keeps, and a
        // program started with SIGINT ignored keeps it ignored. SIGCHLD too: started with it ignored, no
        // child would ever be left a zombie (the kernel collects them). env execs the agent in place (same PID).
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--default-signal=INT,TERM,CHLD", AgentBinary.Path }.Concat(args)) psi.ArgumentList.Add(a);
        // Nothing of this machine's own settings: the store is named, the saved one is elsewhere.
        psi.Environment.Remove(StoreSettings.StoreVariable);
        psi.Environment[StoreSettings.ConfigHomeVariable] = NewFolder("config");
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    private async Task<(int Exit, string Out, string Err)> Run(IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, double seconds = 60)
    {
        using var p = Start(args, env);
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        await p.WaitForExitAsync(timeout.Token);
        var (o, e) = (await output, await error);
        _output.WriteLine($"grid-agent {string.Join(' ', args)} -> {p.ExitCode}\nstdout: {o}\nstderr: {e}");
        return (p.ExitCode, o, e);
    }

    private const string Writes = """
        mkdir -p checkpoints/deep 'naïve dir'
        head -c 3000000 /dev/urandom > checkpoints/model.ckpt
        : > empty.bin
        echo 'résumé' > 'naïve dir/日本語.txt'
        echo "$GRID_PARAM_LR" > lr.txt
        echo 'to stdout'; echo 'to stderr' >&2
        head -c 100000 /dev/urandom > checkpoints/deep/last-instant.bin
        exit 3
        """;

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Run_stores_every_file_byte_exact_passes_the_exit_code_through_and_records_parameters_and_tags(string kind)
    {
        var store = NewStore(kind);
        var work = NewFolder("work");
        File.WriteAllText(Path.Combine(work, "before.txt"), "there before the run");
        var (exit, _, err) = await Run(new[] { "run", "--store", store, "-r", "exe-run", "-e", "exp2", "-C", work, "--param", "lr=0.1", "-t", "baseline", "--", "bash", "-c", Writes });

        Assert.Equal(3, exit);
        Assert.Contains("exe-run-exp2 Failed (exit 3)", err);
        var catalog = new GridCatalog(kind == "s3" ? new S3Store(store) : new FileSystemStore(store));
        var hashes = await TestStore.StoredHashes(catalog, "exe-run", "exp2");
        foreach (var path in new[] { "checkpoints/model.ckpt", "empty.bin", "naïve dir/日本語.txt", "lr.txt", "checkpoints/deep/last-instant.bin" })
            Assert.Equal(TestBytes.Sha256(Path.Combine(work, path)), hashes[path]);
        Assert.False(hashes.ContainsKey("before.txt"));
        Assert.Equal("0.1\n", File.ReadAllText(Path.Combine(work, "lr.txt")));

        var exp = await catalog.Runs.GetLabelledExperimentAsync("exe-run", "exp2", default);
        Assert.Equal(GridStatus.Failed, exp.Status);
        Assert.Equal(3, exp.ExitCode);
        Assert.Equal("0.1", exp.Parameters["lr"]);
        Assert.Contains("baseline", exp.Tags);
        Assert.Equal(hashes.Count, exp.ArtifactCount);
        Assert.True((await catalog.Manifests.ReadManifestAsync("exe-run", "exp2", default))!.Sealed);
        Assert.Equal("to stdout\n", Encoding.UTF8.GetString((await catalog.Store.TryReadAllBytesAsync(StoreLayout.LogKey("exe-run", "exp2", "stdout"), default))!));
        Assert.Equal("to stderr\n", Encoding.UTF8.GetString((await catalog.Store.TryReadAllBytesAsync(StoreLayout.LogKey("exe-run", "exp2", "stderr"), default))!));
    }

    [Theory]
    [InlineData("fs", "sleep 0.2; ")]
    [InlineData("s3", "sleep 0.2; ")]
    [InlineData("fs", "")] // it exits before the agent has read anything of it
    public async Task A_script_that_exits_at_once_leaving_a_process_with_a_file_open_is_stored_whole_and_the_agent_does_not_wait_for_it(string kind, string pause)
    {
        var store = NewStore(kind);
        var work = NewFolder("work");
        // The leftover holds held.txt open and would write for 30 s: the agent ends it and stores what is there.
        var script = $"(exec 3>held.txt; echo part >&3; sleep 30; echo late >&3) & sleep 600 & echo done > quick.txt; while [ ! -s held.txt ]; do sleep 0.01; done; {pause}exit 0";
        var run = "fast-exit-" + Guid.NewGuid().ToString("N")[..8];
        var watch = Stopwatch.StartNew();
        var (exit, _, _) = await Run(new[] { "run", "-s", store, "-r", run, "-C", work, "--", "bash", "-c", script });
        watch.Stop();
        Assert.Equal(0, exit);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"grid-agent took {watch.Elapsed} after its script's exit");
        // Nothing of the script is left running: the agent's environment marks its processes.
        Assert.Empty(ProcessesOfRun(run));
        var catalog = new GridCatalog(kind == "s3" ? new S3Store(store) : new FileSystemStore(store));
        var hashes = await TestStore.StoredHashes(catalog, run);
        Assert.Equal(TestBytes.Sha256(Encoding.UTF8.GetBytes("part\n")), hashes["held.txt"]);
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "quick.txt")), hashes["quick.txt"]);
        Assert.Equal(GridStatus.Succeeded, (await catalog.Runs.GetExperimentAsync(run, "exp0", default)).Status);
    }

    [Fact]
    public async Task A_process_the_script_left_behind_that_ends_while_the_script_runs_is_collected_then_not_left_a_zombie()
    {
        var store = NewStore("fs");
        var work = NewFolder("work");
        // The subshell exits at once, so its loop is given to the agent (the subreaper); the loop ends
        // when the test says, and the script goes on until the test says.
        var script = "(sh -c 'while [ ! -e orphan-ends ]; do sleep 0.05; done' & echo $! > orphan.pid); while [ ! -e go ]; do sleep 0.05; done";
        using var agent = Start(new[] { "run", "-s", store, "-r", "orphan-run", "-C", work, "--", "bash", "-c", script });
        var stderr = agent.StandardError.ReadToEndAsync();
        bool adopted = false, gone = false, scriptRan = false;
        try
        {
            var pidFile = Path.Combine(work, "orphan.pid");
            for (var deadline = DateTime.UtcNow.AddSeconds(20); !(File.Exists(pidFile) && File.ReadAllText(pidFile).EndsWith('\n')); await Task.Delay(20))
                Assert.True(DateTime.UtcNow < deadline && !agent.HasExited, "the script never started: " + (agent.HasExited ? await stderr : ""));
            var stat = $"/proc/{int.Parse(File.ReadAllText(pidFile), System.Globalization.CultureInfo.InvariantCulture)}/stat";
            // Seen as the agent's child (adopted) while it runs; then, once it has ended, gone from
            // /proc while the script still runs: a zombie keeps its entry until its parent collects it.
            var agentPid = agent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
            for (var deadline = DateTime.UtcNow.AddSeconds(20); !adopted && DateTime.UtcNow < deadline; await Task.Delay(20))
                adopted = StatFields(stat) is [not "Z", var parent, ..] && parent == agentPid;
            File.WriteAllText(Path.Combine(work, "orphan-ends"), "");
            for (var deadline = DateTime.UtcNow.AddSeconds(30); !gone && DateTime.UtcNow < deadline; await Task.Delay(50))
                gone = StatFields(stat) is null;
            scriptRan = !agent.HasExited;
        }
        finally
        {
            // Whatever failed above, the orphan and the script end, and so does the agent.
            File.WriteAllText(Path.Combine(work, "orphan-ends"), "");
            File.WriteAllText(Path.Combine(work, "go"), "");
            if (!agent.WaitForExit(TimeSpan.FromSeconds(30))) agent.Kill(entireProcessTree: true);
        }
        _output.WriteLine($"stderr: {await stderr}");
        Assert.True(adopted, "the orphan was never seen as grid-agent's child");
        Assert.True(gone, "the orphan stayed a zombie of grid-agent while the script ran");
        Assert.True(scriptRan, "the script ended before the orphan was collected");
        Assert.Equal(0, agent.ExitCode);
        var catalog = new GridCatalog(new FileSystemStore(store));
        Assert.Equal(GridStatus.Succeeded, (await catalog.Runs.GetExperimentAsync("orphan-run", "exp0", default)).Status);
    }

    /// <summary>A process's /proc stat fields from its state on (state, parent, ...), or null once it is gone.</summary>
    private static string[]? StatFields(string stat)
    {
        try { return File.ReadAllText(stat).Split(") ")[^1].Split(' '); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The live processes (not zombies) whose environment says they are <paramref name="run"/>'s (GRID_RUN).</summary>
    private static List<int> ProcessesOfRun(string run)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "stat")).Split(") ")[^1].StartsWith('Z')) continue;
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains("GRID_RUN=" + run)) found.Add(pid);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
        }
        return found;
    }

    [Theory]
    [InlineData("fs", "TERM", GridStatus.Failed, "SIGTERM")]
    [InlineData("fs", "INT", GridStatus.Stopped, "SIGINT")]
    [InlineData("s3", "TERM", GridStatus.Failed, "SIGTERM")]
    public async Task A_signal_ends_the_experiment_with_its_files_well_within_the_grace(string kind, string signal, GridStatus status, string recorded)
    {
        var store = NewStore(kind);
        var work = NewFolder("work");
        using var agent = Start(new[] { "run", "-s", store, "-r", "sig-run", "-C", work, "--", "bash", "-c", "head -c 300000 /dev/urandom > data.bin; echo started > started.txt; sleep 60" },
            new Dictionary<string, string> { ["GRID_SIGNAL_GRACE"] = "10" });
        var stderr = agent.StandardError.ReadToEndAsync();
        for (var deadline = DateTime.UtcNow.AddSeconds(20); !File.Exists(Path.Combine(work, "started.txt")); await Task.Delay(50))
            Assert.True(DateTime.UtcNow < deadline && !agent.HasExited, "the script never started: " + (agent.HasExited ? await stderr : ""));
        var watch = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", new[] { "-" + signal, agent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) })) await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await agent.WaitForExitAsync(timeout.Token);
        watch.Stop();
        _output.WriteLine($"SIG{signal}: grid-agent exited {agent.ExitCode} {watch.Elapsed.TotalSeconds:0.00} s after the signal; stderr: {await stderr}");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"grid-agent took {watch.Elapsed} to end after SIG{signal}");

        var catalog = new GridCatalog(kind == "s3" ? new S3Store(store) : new FileSystemStore(store));
        var exp = await catalog.Runs.GetExperimentAsync("sig-run", "exp0", default);
        Assert.Equal(status, exp.Status);
        Assert.Equal(recorded, exp.Signal);
        Assert.True(exp.ExitCode >= 128, $"the script's exit code {exp.ExitCode} is not a signal's");
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "data.bin")), (await TestStore.StoredHashes(catalog, "sig-run"))["data.bin"]);
    }

    [Fact]
    public async Task A_stop_request_in_the_store_stops_it_after_a_final_sync()
    {
        var store = NewStore("fs");
        var work = NewFolder("work");
        using var agent = Start(new[] { "run", "-s", store, "-r", "stop-run", "-C", work, "--", "bash", "-c", "echo started > started.txt; sleep 60" });
        for (var deadline = DateTime.UtcNow.AddSeconds(20); !File.Exists(Path.Combine(work, "started.txt")); await Task.Delay(50))
            Assert.True(DateTime.UtcNow < deadline, "the script never started");
        var catalog = new GridCatalog(new FileSystemStore(store));
        await catalog.Store.PutAsync(StoreLayout.StopRequestKey("stop-run", "exp0"), new byte[] { 1 }, default);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await agent.WaitForExitAsync(timeout.Token);
        Assert.Equal(GridStatus.Stopped, (await catalog.Runs.GetExperimentAsync("stop-run", "exp0", default)).Status);
        Assert.True((await TestStore.StoredHashes(catalog, "stop-run")).ContainsKey("started.txt"));
    }

    [Theory]
    [InlineData("fs")]
    [InlineData("s3")]
    public async Task Killed_with_SIGKILL_the_experiment_reads_Lost_and_the_next_agent_takes_it_over_and_ends_it(string kind)
    {
        var store = NewStore(kind);
        var work = NewFolder("work");
        var lost = new Dictionary<string, string> { [Catalogs.LostAfterVariable] = "2" };
        using var first = Start(new[] { "run", "-s", store, "-r", "killed-run", "-C", work, "--", "bash", "-c", "echo $$ > script.pid; echo one > first.txt; sleep 60" }, lost);
        for (var deadline = DateTime.UtcNow.AddSeconds(20); !File.Exists(Path.Combine(work, "first.txt")); await Task.Delay(50))
            Assert.True(DateTime.UtcNow < deadline, "the first script never started");
        await Task.Delay(1500); // its file goes up once it has settled
        first.Kill(); // SIGKILL: no final sync, no status
        await first.WaitForExitAsync();
        using (var script = Process.GetProcessById(int.Parse(File.ReadAllText(Path.Combine(work, "script.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture))) script.Kill();

        var catalog = new GridCatalog(kind == "s3" ? new S3Store(store) : new FileSystemStore(store), TimeSpan.FromSeconds(2));
        for (var deadline = DateTime.UtcNow.AddSeconds(20); (await catalog.Runs.GetExperimentAsync("killed-run", "exp0", default)).Status != GridStatus.Lost; await Task.Delay(200))
            Assert.True(DateTime.UtcNow < deadline, "the killed agent's experiment never read as Lost");

        var (exit, _, err) = await Run(new[] { "run", "-s", store, "-r", "killed-run", "-C", work, "--", "bash", "-c", "echo two > second.txt" }, lost);
        Assert.Equal(0, exit);
        Assert.Contains("killed-run-exp0 Succeeded", err);
        var exp = await catalog.Runs.GetExperimentAsync("killed-run", "exp0", default);
        Assert.Equal(GridStatus.Succeeded, exp.Status);
        var hashes = await TestStore.StoredHashes(catalog, "killed-run");
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "second.txt")), hashes["second.txt"]);
    }

    [Fact]
    public async Task Bad_options_exit_2_a_store_that_cannot_be_written_125_and_a_command_that_is_not_there_127()
    {
        Assert.Equal(2, (await Run(Array.Empty<string>())).Exit);
        var unknown = await Run(new[] { "run", "--no-such-option", "--", "true" });
        Assert.Equal(2, unknown.Exit);
        Assert.Contains("unknown option '--no-such-option'", unknown.Err);
        var badName = await Run(new[] { "run", "-s", NewFolder("store"), "-r", "Bad Name!", "--", "true" });
        Assert.Equal(2, badName.Exit);
        Assert.Equal(2, (await Run(new[] { "run", "-s", NewFolder("store") })).Exit); // no command
        var emptyStore = await Run(new[] { "run", "--store", "", "--", "true" }); // an unset variable, not the default store
        Assert.Equal(2, emptyStore.Exit);
        Assert.Contains("option '--store' is empty", emptyStore.Err);

        // A folder store where a file is: the claim cannot be written, and nothing runs.
        var file = _temp.Sub("a-file");
        File.WriteAllText(file, "not a folder");
        var work = NewFolder("work");
        var blocked = await Run(new[] { "run", "-s", file, "-r", "blocked", "-C", work, "--", "bash", "-c", "echo ran > ran.txt" });
        Assert.Equal(125, blocked.Exit);
        Assert.False(File.Exists(Path.Combine(work, "ran.txt")));
        Assert.StartsWith("grid-agent: blocked-exp0: ", blocked.Err);

        var store = NewFolder("store");
        var missing = await Run(new[] { "run", "-s", store, "-r", "missing-cmd", "-C", NewFolder("work"), "--", "no-such-command-here" });
        Assert.Equal(127, missing.Exit);
        Assert.Equal(GridStatus.Failed, (await new GridCatalog(new FileSystemStore(store)).Runs.GetExperimentAsync("missing-cmd", "exp0", default)).Status);
    }

    [Fact]
    public async Task Empty_values_long_options_with_one_dash_and_parameters_that_clash_are_usage_errors_and_nothing_runs()
    {
        var store = NewFolder("store");
        var work = NewFolder("work");
        foreach (var (args, said) in new[]
        {
            (new[] { "run", "-store", store, "--", "touch", "ran" }, "'-store' has one dash: write '--store'"),
            (new[] { "run", "-C=" + work, "--", "touch", "ran" }, "write '-C "),
            (new[] { "run", "-s", store, "-C", "", "--", "touch", "ran" }, "option '--working-directory' is empty"),
            (new[] { "run", "-s", store, "-a", "", "--", "touch", "ran" }, "option '--artifact-path' is empty"),
            (new[] { "run", "-s", store, "-C", work, "-p", "lr=1", "-p", "LR=2", "--", "touch", "ran" }, "differ only in case"),
            (new[] { "run", "-s", "s3:/bucket/typo", "-C", work, "--", "touch", "ran" }, "s3:/bucket/typo"),
        })
        {
            var (exit, _, err) = await Run(args);
            Assert.Equal(2, exit);
            Assert.Contains(said, err);
        }
        Assert.False(File.Exists(Path.Combine(work, "ran")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(store));
    }

    [Fact]
    public async Task Help_and_version_read_like_a_Unix_tool_s()
    {
        var help = await Run(new[] { "--help" });
        Assert.Equal(0, help.Exit);
        Assert.Contains("Usage: grid-agent COMMAND", help.Out);
        var run = await Run(new[] { "run", "--help" });
        Assert.Equal(0, run.Exit);
        foreach (var option in new[] { "--run=RUN", "--store=LOCATION", "--param=NAME=VALUE", "Exit status:", "125", "GRID_SIGNAL_GRACE" })
            Assert.Contains(option, run.Out);
        var version = await Run(new[] { "--version" });
        Assert.Equal(0, version.Exit);
        Assert.Equal($"grid-agent {typeof(GridCatalog).Assembly.GetName().Version!.ToString(3)}", version.Out.Trim());
    }

    [Fact]
    public async Task Plan_runs_the_Slurm_task_s_experiment_of_a_plan_and_the_last_one_to_end_removes_the_run_folder()
    {
        var store = NewFolder("store");
        var catalog = new GridCatalog(new FileSystemStore(store));
        // Named as Start-GridRun names a run's folder: <run>.<8 hex digits>.
        var runFolder = _temp.Sub("planned." + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(runFolder);
        var now = DateTimeOffset.UtcNow;
        await catalog.Writer.CreateRunAsync(new RunRecord { Name = "planned", Created = now, Command = "sweep" }, default);
        var parameters = new[] { "0.1", "0.2" }.Select(lr => new Dictionary<string, string> { ["lr"] = lr }).ToList();
        await catalog.Writer.QueueExperimentsAsync("planned", parameters.Select(p => (p, "bash -c ...")).ToList(), now, default);
        var plan = new RunPlan
        {
            Run = "planned",
            Store = store,
            ThrottleLimit = 2,
            Experiments = parameters.Select((p, i) => new PlannedExperiment
            {
                Experiment = GridNames.ExperimentName(i),
                WorkingDirectory = Path.Combine(runFolder, GridNames.ExperimentName(i)),
                Parameters = p,
                Command = new[] { "bash", "-c", "echo \"$GRID_PARAM_LR\" > lr.txt" },
            }).ToList(),
        };
        var planPath = Path.Combine(runFolder, "plan.json");
        plan.Write(planPath);

        // As a Slurm array task runs it: the index from SLURM_ARRAY_TASK_ID.
        var first = await Run(new[] { "plan", planPath }, new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "1" });
        Assert.Equal(0, first.Exit);
        Assert.False(Directory.Exists(Path.Combine(runFolder, "exp1")));
        Assert.True(File.Exists(planPath)); // exp0 is still queued: its task reads the plan
        Assert.Equal(TestBytes.Sha256(Encoding.UTF8.GetBytes("0.2\n")), (await TestStore.StoredHashes(catalog, "planned", "exp1"))["lr.txt"]);

        var last = await Run(new[] { "plan", planPath, "--index", "0" });
        Assert.Equal(0, last.Exit);
        Assert.False(Directory.Exists(runFolder));
        var run = await catalog.Runs.GetRunAsync("planned", default);
        Assert.Equal(GridStatus.Succeeded, run.Status);

        var none = await Run(new[] { "plan", planPath, "--index", "0" });
        Assert.Equal(125, none.Exit); // the plan is gone with its folder

        // A copy of a plan elsewhere: the experiment it names has ended, so it is refused, and the
        // folder the copy is in is never taken for the run's.
        var elsewhere = NewFolder("project");
        File.WriteAllText(Path.Combine(elsewhere, "notes.txt"), "mine");
        plan.Write(Path.Combine(elsewhere, "plan.json"));
        var copied = await Run(new[] { "plan", Path.Combine(elsewhere, "plan.json"), "--index", "0" });
        Assert.Equal(125, copied.Exit);
        Assert.Contains("ExperimentExists", copied.Err);
        Assert.True(File.Exists(Path.Combine(elsewhere, "notes.txt")));
    }
}

/// <summary>Where the executable under test is: $GRID_TEST_AGENT, else the one build.ps1 staged in out/.</summary>
internal static class AgentBinary
{
    public const string Variable = "GRID_TEST_AGENT";

    public static string Path
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable(Variable);
            if (!string.IsNullOrEmpty(configured)) return configured;
            var root = AppContext.BaseDirectory;
            while (root is not null && !File.Exists(System.IO.Path.Combine(root, "GridArtifacts.sln"))) root = System.IO.Path.GetDirectoryName(root);
            var staged = System.IO.Path.Combine(root ?? ".", "out", "GridArtifacts", "agent", AgentExecutable.Platform, AgentExecutable.Name);
            Assert.True(File.Exists(staged), $"{staged} is missing: build first (dotnet pwsh ./build.ps1 -Task Build); build.ps1 -Task Test does.");
            return staged;
        }
    }
}
