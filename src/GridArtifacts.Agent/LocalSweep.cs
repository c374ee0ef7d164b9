using System.Diagnostics;
using System.Runtime.InteropServices;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Launch;

namespace GridArtifacts.Agent;

/// <summary>
/// <c>grid-agent sweep PLAN</c>: the supervisor of a run on this machine. Every experiment of the
/// plan runs as <c>grid-agent plan PLAN --index N</c> in a process of its own, at most the plan's
/// ThrottleLimit at once: one experiment's end (refused, removed, a store error) never ends the others.
/// </summary>
internal static class LocalSweep
{
    public static async Task<int> RunAsync(string[] args)
    {
        var line = new CommandLine(args, new Dictionary<string, string> { ["h"] = "help" }, new HashSet<string>(), new HashSet<string> { "help" }, stopAtFirstWord: false);
        if (line.Has("help"))
        {
            Console.Out.WriteLine(Help.Sweep);
            return 0;
        }
        if (line.Rest.Count != 1) throw new UsageException("give one plan (plan.json in the run's folder)");
        var planPath = Path.GetFullPath(line.Rest[0]);
        RunPlan plan;
        try { plan = RunPlan.Read(planPath); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine($"grid-agent: {ex.Message}");
            return Program.AgentFailed;
        }

        var self = Environment.ProcessPath ?? throw new InvalidOperationException("The agent's own path is unknown.");
        // Under dotnet (a plain build, not the native executable), the children are started the same way.
        var prefix = Path.GetFileNameWithoutExtension(self) == "dotnet" ? new[] { Path.Combine(AppContext.BaseDirectory, "grid-agent.dll") } : Array.Empty<string>();
        var running = new List<Process>();
        var stopping = false;
        void OnSignal(PosixSignalContext context)
        {
            // Passed on: each experiment stops as its agent does on a signal; none more starts.
            context.Cancel = true;
            lock (running)
            {
                stopping = true;
                foreach (var p in running)
                {
                    try { if (!p.HasExited) Kill(p.Id, context.Signal); } catch (InvalidOperationException) { }
                }
            }
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        var failed = 0;
        using var slots = new SemaphoreSlim(Math.Max(1, plan.ThrottleLimit));
        var tasks = new List<Task>();
        var started = 0;
        for (var i = 0; i < plan.Experiments.Count; i++)
        {
            await slots.WaitAsync().ConfigureAwait(false);
            var psi = new ProcessStartInfo(self) { UseShellExecute = false };
            foreach (var a in prefix.Concat(new[] { "plan", planPath, "--index", i.ToString(System.Globalization.CultureInfo.InvariantCulture), "--quiet", "--leave-run-folder" })) psi.ArgumentList.Add(a);
            Process child;
            lock (running)
            {
                // Decided under the lock the signal handler takes: a child is either not started or signalled.
                if (stopping) { slots.Release(); break; }
                child = Process.Start(psi)!;
                running.Add(child);
                started++;
            }
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    await child.WaitForExitAsync().ConfigureAwait(false);
                    if (child.ExitCode != 0) Interlocked.Increment(ref failed);
                }
                finally
                {
                    lock (running) running.Remove(child);
                    child.Dispose();
                    slots.Release();
                }
            }));
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
        // The experiments a signal kept from starting would wait as Queued for ever: ended Stopped.
        for (var i = started; i < plan.Experiments.Count; i++)
        {
            try { await Core.Catalogs.Open(plan.Store).Claims.StopQueuedAsync(plan.Run, plan.Experiments[i].Experiment, CancellationToken.None).ConfigureAwait(false); }
            catch (Model.GridException ex) { Console.Error.WriteLine($"grid-agent: {plan.Run}-{plan.Experiments[i].Experiment} was not started and could not be ended Stopped: {ex.Message}"); }
        }
        // The run's folder (plan, supervisor.log) goes once every experiment has had its turn, when
        // every one has ended and this log is empty: an experiment that ended early must not take the
        // plan from the ones still to start.
        if (!plan.KeepWorkingDirectory)
        {
            Console.Out.Flush();
            Console.Error.Flush();
            await PlannedRun.RemoveRunFolderIfEndedAsync(plan, planPath, CancellationToken.None).ConfigureAwait(false);
        }
        return failed == 0 && !stopping ? 0 : 1;
    }

    private static void Kill(int pid, PosixSignal signal) => ScriptProcesses.Send(pid, signal == PosixSignal.SIGINT ? 2 : 15);
}
