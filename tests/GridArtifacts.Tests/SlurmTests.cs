using System.Diagnostics;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using GridArtifacts.Core.Launch;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// What the module says to Slurm and reads back, without a cluster: the job script (run by bash
/// here), sbatch's arguments, and squeue's, sbatch's and scontrol's answers as Slurm 22.05 prints
/// them. tests/slurm/Slurm.Tests.ps1 runs the same on a real one-node Slurm.
/// </summary>
public sealed class SlurmTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(null, "10")]
    [InlineData("110", "110")]
    public async Task The_job_script_hands_pwsh_every_word_as_it_was_and_the_grace_the_submitter_set_or_KillWait(string? submitterGrace, string grace)
    {
        var folder = Directory.CreateDirectory(_temp.Sub("it's a run")).FullName;
        var plan = Path.Combine(folder, "plan \"one\".json");
        var task = Path.Combine(folder, "$HOME `x` task.ps1");
        // bash stands in for pwsh: it prints the grace it was given, then each argument on a line of its own.
        var pwsh = new[] { "/bin/bash", "-c", "echo \"$GRID_SIGNAL_GRACE\"; printf '%s\\n' \"$@\"", "pwsh" };
        var script = Slurm.JobScript("my-run", "0.4.0", pwsh, task, plan, killWait: 10);
        var file = Path.Combine(folder, "slurm.sh");
        await File.WriteAllTextAsync(file, script);
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(file);
        psi.Environment["SLURM_ARRAY_TASK_ID"] = "3";
        psi.Environment["GRID_SIGNAL_GRACE"] = submitterGrace;
        if (submitterGrace is null) psi.Environment.Remove("GRID_SIGNAL_GRACE");
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, await p.StandardError.ReadToEndAsync());
        Assert.Equal(new[] { grace, "-NoProfile", "-NonInteractive", "-File", task, "-PlanPath", plan, "-Index", "3" }, output.TrimEnd('\n').Split('\n'));
        Assert.DoesNotContain("GRID_SIGNAL_GRACE", Slurm.JobScript("r", "0.4.0", new[] { "pwsh" }, task, plan, killWait: null));
    }

    [Theory]
    [InlineData("0.6.0", true)]   // the release's own executable runs the task
    [InlineData("0.5.9", false)]  // another release's: pwsh runs it, and the output says so
    [InlineData(null, false)]     // none on the node: the same
    public async Task The_job_script_runs_grid_agent_with_the_plan_and_the_task_s_index_and_pwsh_where_it_does_not_run(string? agentVersion, bool byAgent)
    {
        var folder = Directory.CreateDirectory(_temp.Sub("it's a run " + Guid.NewGuid().ToString("N"))).FullName;
        var plan = Path.Combine(folder, "plan \"one\".json");
        var task = Path.Combine(folder, "task.ps1");
        // A stand-in for grid-agent: its version, else each argument on a line of its own.
        var agent = Path.Combine(folder, "grid $agent");
        if (agentVersion is not null)
        {
            await File.WriteAllTextAsync(agent, $"#!/bin/bash\nif [ \"$1\" = version ]; then echo 'grid-agent {agentVersion}'; exit 0; fi\necho agent; printf '%s\\n' \"$@\"\n");
            File.SetUnixFileMode(agent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var pwsh = new[] { "/bin/bash", "-c", "echo pwsh; printf '%s\\n' \"$@\"", "pwsh" };
        var file = Path.Combine(folder, "slurm.sh");
        await File.WriteAllTextAsync(file, Slurm.JobScript("my-run", "0.6.0", pwsh, task, plan, killWait: 10, agent));
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(file);
        psi.Environment["SLURM_ARRAY_TASK_ID"] = "3";
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        var errors = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, errors);
        if (byAgent)
        {
            Assert.Equal(new[] { "agent", "plan", plan, "--index", "3" }, output.TrimEnd('\n').Split('\n'));
            Assert.Equal("", errors);
        }
        else
        {
            Assert.Equal(new[] { "pwsh", "-NoProfile", "-NonInteractive", "-File", task, "-PlanPath", plan, "-Index", "3" }, output.TrimEnd('\n').Split('\n'));
            Assert.Contains($"GridArtifacts: {agent} does not run on ", errors);
            Assert.Contains("or is not grid-agent 0.6.0; this task runs under pwsh.", errors);
        }
    }

    [Fact]
    public void Sbatch_gets_one_array_of_every_experiment_at_the_throttle_then_the_users_options_then_the_script()
    {
        var args = Slurm.SubmitArguments("my-run", 5, 2, "/work/my-run", new[] { "--partition=gpu", "--time=1:00" }, "/work/my-run/slurm.sh");
        Assert.Equal(new[]
        {
            "--parsable", "--array=0-4%2", "--job-name=grid-my-run", "--output=/work/my-run/slurm/%a.out", "--chdir=/work/my-run",
            "--partition=gpu", "--time=1:00", "/work/my-run/slurm.sh",
        }, args);
    }

    [Theory]
    [InlineData("--array=0-3", "--array")]
    [InlineData("--array", "--array")]
    [InlineData("-a", "-a")]
    [InlineData("-a0-3", "-a")]
    [InlineData("--parsable", "--parsable")]
    [InlineData("--wrap=hostname", "--wrap")]
    [InlineData("--account=ml", null)]
    [InlineData("--arrayx", null)]
    [InlineData("-A", null)]
    public void Options_that_would_break_which_task_runs_which_experiment_are_named(string argument, string? reserved) =>
        Assert.Equal(reserved, Slurm.ReservedOption(argument));

    [Theory]
    [InlineData("1234\n", "1234", null)]
    [InlineData("1234;cluster-a\n", "1234", "cluster-a")]
    [InlineData("sbatch: warning: something\n77\n", "77", null)]
    public void Sbatch_parsable_answers_give_the_job_and_its_cluster(string stdout, string job, string? cluster) =>
        Assert.Equal((job, cluster), Slurm.ParseSubmitted(stdout));

    [Theory]
    [InlineData("")]
    [InlineData("Submitted batch job 12\n")]
    [InlineData("12_3\n")]
    public void An_answer_that_is_no_job_id_is_refused(string stdout) =>
        Assert.Throws<FormatException>(() => Slurm.ParseSubmitted(stdout));

    [Fact]
    public void Scontrol_show_config_gives_kill_wait_and_the_cluster_name()
    {
        var config = Slurm.ParseConfig("Configuration data as of 2026-12-01T21:14:55\nAccountingStorageBackupHost = (null)\nClusterName             = grid\nKillWait                = 30 sec\nSchedulerParameters     = batch_sched_delay=0,sched_min_interval=100000\n");
        Assert.Equal(30, Slurm.KillWait(config));
        Assert.Equal("grid", Slurm.ClusterName(config));
        Assert.Equal("batch_sched_delay=0,sched_min_interval=100000", config["SchedulerParameters"]);
        Assert.Null(Slurm.KillWait(Slurm.ParseConfig("KillWait = (null)\n")));
    }

    // As squeue -h -r -t all -j 21,24 -O Slurm.QueueFormat printed them here: job 21 (%1, exit 3) with
    // its pending rest cancelled, job 24 with task 1 cancelled while it ran.
    private const string Queue = "21|N/A|CANCELLED|0|\n24|1|CANCELLED|15|\n21|1|FAILED|768|\n21|0|FAILED|768|\n24|0|RUNNING|0|\n";

    [Fact]
    public void Squeue_lines_give_each_task_its_state_and_exit_status()
    {
        var lines = Slurm.ParseQueue(Queue + "garbage\n21|2-3%1|PENDING|0|\n");
        Assert.Equal(5, lines.Count);
        Assert.Equal(new Slurm.TaskLine("21", null, "CANCELLED", 0), lines[0]);
        Assert.Equal((3, (int?)null), (lines[2].ExitCode!.Value, lines[2].Signal));
        Assert.Equal((0, (int?)15), (lines[1].ExitCode!.Value, lines[1].Signal));
    }

    [Fact]
    public void A_queued_experiment_ends_as_its_task_did_and_waits_while_its_task_has_not_ended()
    {
        var lines = Slurm.ParseQueue(Queue);
        var failed = Slurm.EndOfQueued("21", 1, lines, jobKnown: true)!.Value;
        Assert.Equal((GridStatus.Failed, 3), (failed.Status, failed.ExitCode!.Value));
        Assert.Contains("Slurm task 21_1 ended FAILED (exit 3) before its agent started", failed.Reason);
        // Cancelled while pending: no line of its own, the job's remainder line stands for it.
        Assert.Equal(GridStatus.Stopped, Slurm.EndOfQueued("21", 3, lines, jobKnown: true)!.Value.Status);
        // Cancelled while running (before its agent took it): what someone asked for.
        Assert.Equal(GridStatus.Stopped, Slurm.EndOfQueued("24", 1, lines, jobKnown: true)!.Value.Status);
        Assert.Null(Slurm.EndOfQueued("24", 0, lines, jobKnown: true));
        // Job 24 has no remainder line: its task 5 is pending (or unknown), never judged.
        Assert.Null(Slurm.EndOfQueued("24", 5, lines, jobKnown: true));
        var gone = Slurm.EndOfQueued("99", 0, lines, jobKnown: false)!.Value;
        Assert.Equal(GridStatus.Failed, gone.Status);
        Assert.Contains("no longer knows job 99", gone.Reason);
    }

    [Fact]
    public void Some_tasks_of_an_array_are_named_as_scancel_takes_them() =>
        Assert.Equal("77_[0-2,5,9-10]", Slurm.Tasks("77", new[] { 10, 2, 0, 2, 1, 9, 5 }));

    [Fact]
    public void A_job_key_reads_back_and_has_a_shape_0_3_0_and_0_2_0_pass_over()
    {
        var key = CatalogIndex.JobKey("my-run", GridScheduler.Slurm, "grid", "1234");
        Assert.Equal("runs/my-run~job~slurm~grid~1234", key);
        var entry = Assert.IsType<CatalogIndex.JobEntry>(CatalogIndex.Parse(key));
        Assert.Equal(new RunJob(GridScheduler.Slurm, "grid", "1234"), entry.Job);
        Assert.Equal(new RunJob(GridScheduler.Slurm, null, "5"), Assert.IsType<CatalogIndex.JobEntry>(CatalogIndex.Parse(CatalogIndex.JobKey("r", GridScheduler.Slurm, null, "5"))).Job);
        // The shapes 0.3.0 reads (CatalogIndex at 2039e1c); 0.2.0 reads a subset of them.
        var fields = key[StoreLayout.RunsPrefix.Length..].Split(CatalogIndex.Separator);
        Assert.False(fields.Length == 10 || fields is [_, "protected"] || fields is [_, "run", _, _] || fields is [_, "tag", _] || fields is [_, _, "tag", _], key);
        Assert.Throws<ArgumentException>(() => CatalogIndex.JobKey("r", GridScheduler.Slurm, null, "12/3"));
        Assert.Throws<ArgumentException>(() => CatalogIndex.JobKey("r", GridScheduler.Local, null, "1"));
        Assert.Null(CatalogIndex.Parse("runs/my-run~job~local~_~1"));
        Assert.Null(CatalogIndex.Parse("runs/my-run~job~nosuch~_~1"));
    }
}
