using System.Diagnostics;
using System.Text.Json;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;
using Xunit.Abstractions;

namespace GridArtifacts.Tests;

/// <summary>
/// SIGTERM and SIGINT to the agent: the script is sent SIGTERM, the end (final sync, logs, sealed
/// manifest, status) is done within the stop budget, and the status says who stopped it.
/// They time the agent against its budget, so they run alone (<see cref="TimedAlone"/>).
/// </summary>
[Collection(TimedAlone.Name)]
public sealed class SignalTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly ITestOutputHelper _output;

    public SignalTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => _temp.Dispose();

    private string NewFolder(string name)
    {
        var path = _temp.Sub(name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    private static async Task WaitFor(Func<Task<bool>> condition, string what, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50);
        }
    }

    private static async Task<bool> Uploaded(GridCatalog catalog, string run, string path) =>
        (await catalog.Manifests.ReadManifestAsync(run, "exp0", default))?.Artifacts.Any(a => a.Path == path) == true;

    // ---- the budget ---------------------------------------------------------------------------------

    [Theory]
    [InlineData(null, 27.0, false)]
    [InlineData("", 27.0, false)]
    [InlineData("60", 57.0, false)]
    [InlineData(" 10.5 ", 7.5, false)]
    [InlineData("4", 2.0, false)]
    [InlineData("0", 2.0, false)]
    [InlineData("thirty", 27.0, true)]
    [InlineData("-5", 27.0, true)]
    [InlineData("30s", 27.0, true)]
    [InlineData("NaN", 27.0, true)]
    public void The_stop_budget_is_the_grace_less_3_s_never_under_2_s_and_a_bad_grace_is_the_default_with_a_reason(string? grace, double seconds, bool bad)
    {
        var budget = CaptureOptions.StopBudgetFor(grace, out var problem);
        Assert.Equal(TimeSpan.FromSeconds(seconds), budget);
        if (bad) Assert.Contains("GRID_SIGNAL_GRACE", problem);
        else Assert.Null(problem);
    }

    // ---- the agent, stopped by a signal ---------------------------------------------------------------

    private static CaptureOptions Bash(string work, string script, TimeSpan budget) => new()
    {
        FileName = "bash",
        Arguments = new[] { "-c", script },
        WorkingDirectory = work,
        SettleTime = TimeSpan.Zero,
        RescanInterval = TimeSpan.FromMilliseconds(200),
        HeartbeatInterval = TimeSpan.FromMilliseconds(500),
        ClaimSettle = TimeSpan.FromMilliseconds(200),
        StopBudget = budget,
    };

    [Theory]
    [InlineData("hanging")]
    [InlineData("failing")]
    public async Task A_SIGTERM_with_an_upload_that_will_not_go_ends_within_the_budget_sealed_and_Failed(string store)
    {
        var stuck = new StuckStore(new FileSystemStore(NewFolder("store")), "stuck.bin", fail: store == "failing");
        var catalog = new GridCatalog(stuck);
        var work = NewFolder("work");
        var budget = TimeSpan.FromSeconds(2);
        // The script ends of the SIGTERM at once (bash runs its last command in its own place).
        var agent = new CaptureAgent(catalog, "term-run", "exp0", Bash(work, "head -c 150000 /dev/urandom > first.bin; sleep 0.7; head -c 90000 /dev/urandom > stuck.bin; sleep 60", budget));
        var warnings = new List<string>();
        agent.Warning += w => { lock (warnings) warnings.Add(w); };
        var running = agent.RunAsync(default);
        await WaitFor(() => Uploaded(catalog, "term-run", "first.bin"), "first.bin in the store");
        await WaitFor(() => Task.FromResult(stuck.Attempts > 0), "an upload of stuck.bin");

        var watch = Stopwatch.StartNew();
        Assert.True(agent.StopBySignal("SIGTERM"));
        var exit = await running.WaitAsync(TimeSpan.FromSeconds(30));
        watch.Stop();
        _output.WriteLine($"{store} store: the agent ended {watch.Elapsed.TotalSeconds:0.00} s after SIGTERM (budget {budget.TotalSeconds} s); {stuck.Attempts} attempts at stuck.bin");

        // Within the budget, and it used the budget for the upload that did not go (not given up at once).
        Assert.InRange(watch.Elapsed, budget - TimeSpan.FromMilliseconds(300), budget + TimeSpan.FromSeconds(1));
        Assert.Equal(143, exit); // bash, ended by the SIGTERM
        var exp = await catalog.Runs.GetExperimentAsync("term-run", "exp0", default);
        Assert.Equal(GridStatus.Failed, exp.Status);
        Assert.Equal("SIGTERM", exp.Signal);
        Assert.Equal(143, exp.ExitCode);
        Assert.Equal(1, exp.Sync!.FilesPending);
        var manifest = (await catalog.Manifests.ReadManifestAsync("term-run", "exp0", default))!;
        Assert.True(manifest.Sealed);
        Assert.Equal(new[] { "first.bin" }, manifest.Artifacts.Select(a => a.Path));
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "first.bin")), (await TestStore.StoredHashes(catalog, "term-run"))["first.bin"]);
        Assert.DoesNotContain(warnings, w => w.Contains("still holds it open"));
        Assert.Contains(warnings, w => w.Contains("1 file(s) did not reach the store before the time a SIGTERM leaves ran out"));
    }

    [Theory]
    [InlineData("SIGTERM", true, GridStatus.Stopped)]
    [InlineData("SIGTERM", false, GridStatus.Failed)]
    [InlineData("SIGINT", false, GridStatus.Stopped)]
    public async Task A_script_that_handles_SIGTERM_saves_its_state_and_the_status_says_who_stopped_it(string signal, bool stopRequested, GridStatus status)
    {
        var catalog = new GridCatalog(new FileSystemStore(NewFolder("store")));
        var work = NewFolder("work");
        // The agent passes only when woken (a change, the stop), so it does not see the stop request before the signal.
        // The sleep the trap leaves behind holds the script's output open until the agent kills it.
        var options = Bash(work, "trap 'echo saved > saved.txt; exit 0' TERM; echo started > started.txt; sleep 60 & wait", TimeSpan.FromSeconds(10)) with
        {
            RescanInterval = TimeSpan.FromHours(1),
            HeartbeatInterval = TimeSpan.FromHours(1),
            FullRescanInterval = TimeSpan.FromHours(1),
        };
        var agent = new CaptureAgent(catalog, "trap-run", "exp0", options);
        var running = agent.RunAsync(default);
        await WaitFor(() => Uploaded(catalog, "trap-run", "started.txt"), "started.txt in the store");
        if (stopRequested)
        {
            await Task.Delay(300);
            await catalog.Store.PutAsync(StoreLayout.StopRequestKey("trap-run", "exp0"), new byte[] { 1 }, default);
        }
        var watch = Stopwatch.StartNew();
        Assert.True(agent.StopBySignal(signal));
        var exit = await running.WaitAsync(TimeSpan.FromSeconds(30));
        _output.WriteLine($"{signal}, stop request {stopRequested}: ended {watch.Elapsed.TotalSeconds:0.00} s after the signal, {status}");

        Assert.Equal(0, exit); // the script's own exit, from its trap
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(3), $"took {watch.Elapsed}"); // not the 10 s budget: nothing was waited out
        var exp = await catalog.Runs.GetExperimentAsync("trap-run", "exp0", default);
        Assert.Equal(status, exp.Status);
        Assert.Equal(signal, exp.Signal);
        Assert.Equal(0, exp.ExitCode);
        Assert.Equal(0, exp.Sync!.FilesPending);
        Assert.True((await catalog.Manifests.ReadManifestAsync("trap-run", "exp0", default))!.Sealed);
        // What the script wrote on SIGTERM, after the signal, is stored byte-exact.
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "saved.txt")), (await TestStore.StoredHashes(catalog, "trap-run"))["saved.txt"]);
        Assert.False(agent.StopBySignal("SIGTERM")); // over: a later signal is the process's own to act on
    }

    [Theory]
    [InlineData("kill -TERM $$", GridStatus.Failed, "SIGTERM")]
    [InlineData("echo done > done.txt; exit 0", GridStatus.Succeeded, null)]
    public async Task A_signal_that_reaches_the_agent_just_after_its_script_died_of_it_is_what_ended_it_but_not_after_a_success(string script, GridStatus status, string? signal)
    {
        // A scheduler signals every process of the task: the script may die of it before the agent's
        // handler runs. Here the signal reaches the agent while its end writes the sealed manifest.
        var store = new HeldSeal(new FileSystemStore(NewFolder("store")));
        var catalog = new GridCatalog(store);
        var agent = new CaptureAgent(catalog, "late-run", "exp0", Bash(NewFolder("work"), "echo out; " + script, TimeSpan.FromSeconds(5)));
        var running = agent.RunAsync(default);
        await store.Held.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(agent.StopBySignal("SIGTERM"));
        store.Release.SetResult();
        await running.WaitAsync(TimeSpan.FromSeconds(20));
        var exp = await catalog.Runs.GetExperimentAsync("late-run", "exp0", default);
        Assert.Equal((status, signal), (exp.Status, exp.Signal));
        Assert.True((await catalog.Manifests.ReadManifestAsync("late-run", "exp0", default))!.Sealed);
    }

    /// <summary>Holds the upload of the sealed manifest (only the end writes it in so short a run) until released.</summary>
    private sealed class HeldSeal(IObjectStore inner) : DelegatingStore(inner)
    {
        public TaskCompletionSource Held { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override async Task<string> PutFileAsync(string key, LocalFile file, CancellationToken ct)
        {
            if (key.EndsWith("/manifest.json", StringComparison.Ordinal) && Held.TrySetResult()) await Release.Task.ConfigureAwait(false);
            return await Inner.PutFileAsync(key, file, ct).ConfigureAwait(false);
        }
    }

    [Fact]
    public async Task Without_a_signal_the_record_has_no_signal_field()
    {
        var store = new FileSystemStore(NewFolder("store"));
        var catalog = new GridCatalog(store);
        var agent = new CaptureAgent(catalog, "plain-run", "exp0", Bash(NewFolder("work"), "echo x > x.txt; exit 2", TimeSpan.FromSeconds(5)));
        Assert.Equal(2, await agent.RunAsync(default));
        var json = JsonDocument.Parse((await store.TryReadAllBytesAsync(StoreLayout.ExperimentRecordKey("plain-run", "exp0"), default))!);
        Assert.False(json.RootElement.TryGetProperty("signal", out _));
        var exp = await catalog.Runs.GetExperimentAsync("plain-run", "exp0", default);
        Assert.Equal(GridStatus.Failed, exp.Status);
        Assert.Null(exp.Signal);
    }

    // ---- Invoke-GridExperiment in a pwsh of its own, signalled as a scheduler does -----------------------

    private static string RepoRoot()
    {
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "GridArtifacts.sln"))) root = Path.GetDirectoryName(root);
        return root ?? throw new InvalidOperationException("The repository root (GridArtifacts.sln) was not found above the test binaries.");
    }

    /// <summary>pwsh.dll of the repository's PowerShell tool, so `dotnet pwsh.dll` is the process signalled (not a launcher in front of it).</summary>
    private static string PwshDll(string repo)
    {
        using var tools = JsonDocument.Parse(File.ReadAllText(Path.Combine(repo, ".config", "dotnet-tools.json")));
        var version = tools.RootElement.GetProperty("tools").GetProperty("powershell").GetProperty("version").GetString()!;
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var tool = Path.Combine(packages, "powershell", version, "tools");
        var dll = Directory.Exists(tool) ? Directory.EnumerateFiles(tool, "pwsh.dll", SearchOption.AllDirectories).FirstOrDefault(f => f.Contains($"{Path.DirectorySeparatorChar}unix{Path.DirectorySeparatorChar}")) : null;
        Assert.True(dll is not null, $"pwsh.dll of PowerShell {version} is not under {tool}: run 'dotnet tool restore'.");
        return dll!;
    }

    [Theory]
    [InlineData("TERM", GridStatus.Failed, "SIGTERM")]
    [InlineData("INT", GridStatus.Stopped, "SIGINT")]
    public async Task Invoke_GridExperiment_sent_a_signal_ends_the_experiment_with_its_files_well_within_the_grace(string kill, GridStatus status, string signal)
    {
        if (OperatingSystem.IsWindows()) return; // kill(1)
        var repo = RepoRoot();
        var module = Path.Combine(repo, "out", "GridArtifacts", "GridArtifacts.psd1");
        Assert.True(File.Exists(module), $"{module} is missing: build first (dotnet pwsh ./build.ps1 -Task Build); build.ps1 -Task Test does.");
        var storeFolder = NewFolder("store");
        var work = NewFolder("work");
        var script = Path.Combine(NewFolder("script"), "job.ps1");
        File.WriteAllText(script, $"""
            Import-Module '{module}'
            $e = Invoke-GridExperiment -Run sig-run -Store '{storeFolder}' -WorkingDirectory '{work}' -- bash -c 'head -c 300000 /dev/urandom > data.bin; echo started > started.txt; sleep 60'
            "after: $LASTEXITCODE $($e.Status) $($e.Signal)"
            """);
        // SIGINT at its default, as a terminal or a scheduler starts a job: a test run started in the
        // background (a shell's &) has it ignored, which every child keeps. env execs dotnet in place.
        var psi = new ProcessStartInfo("env") { WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--default-signal=INT,TERM", "dotnet", PwshDll(repo), "-NoProfile", "-NonInteractive", "-File", script }) psi.ArgumentList.Add(a);
        psi.Environment["GRID_SIGNAL_GRACE"] = "10";
        using var child = Process.Start(psi)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        var catalog = new GridCatalog(new FileSystemStore(storeFolder));
        await WaitFor(async () =>
        {
            if (child.HasExited) Assert.Fail("pwsh ended early: " + await stderr);
            return File.Exists(Path.Combine(work, "started.txt"));
        }, "the script to start", 60);

        var watch = Stopwatch.StartNew();
        using (var sender = Process.Start("kill", new[] { "-" + kill, child.Id.ToString() })) await sender.WaitForExitAsync();
        await child.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        watch.Stop();
        var output = await stdout;
        _output.WriteLine($"SIG{kill}: pwsh exited {child.ExitCode} {watch.Elapsed.TotalSeconds:0.00} s after the signal (grace 10 s); stdout: {output.Trim()}; stderr: {(await stderr).Trim()}");

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"pwsh took {watch.Elapsed} to end after SIG{kill}");
        Assert.Equal(0, child.ExitCode);
        // SIGTERM: the cmdlet returns as usual, the script goes on; SIGINT: PowerShell stops the script too.
        if (kill == "TERM") Assert.Contains($"after: 143 Failed SIGTERM", output);
        else Assert.DoesNotContain("after:", output);
        var exp = await catalog.Runs.GetExperimentAsync("sig-run", "exp0", default);
        Assert.Equal(status, exp.Status);
        Assert.Equal(signal, exp.Signal);
        Assert.Equal(143, exp.ExitCode); // bash, ended by the SIGTERM the agent sent it
        Assert.True((await catalog.Manifests.ReadManifestAsync("sig-run", "exp0", default))!.Sealed);
        var stored = await TestStore.StoredHashes(catalog, "sig-run");
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "data.bin")), stored["data.bin"]);
        Assert.Equal(TestBytes.Sha256(Path.Combine(work, "started.txt")), stored["started.txt"]);
    }
}

/// <summary>
/// Tests that measure against a budget run after the others, one at a time. Time: in a process where
/// a hundred other tests block pool threads, a timer's callback can come seconds late, which measures
/// the test process rather than the agent (which runs in a process of its own). Memory: the managed
/// heap is the whole process's, so what other tests hold at that moment would be counted too.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimedAlone
{
    public const string Name = "timed, alone";
}
