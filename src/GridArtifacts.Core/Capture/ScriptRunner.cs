using System.Diagnostics;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The agent's script: its process, started in the working folder with GRID_RUN and GRID_EXPERIMENT
/// set, its output and errors going to stdout.log and stderr.log as they come; and its end, when a
/// signal stops the agent: SIGTERM first, a few seconds to exit, then its whole tree is killed, with
/// the processes it started meanwhile, even those it left behind.
/// </summary>
internal sealed class ScriptRunner : IDisposable
{
    private readonly Process _process;
    private readonly Task[] _pumps;
    private readonly TimeSpan? _stopBudget;
    private readonly TimeProvider _clock;
    /// <summary>The script, by its number and start time: a number the system later gives another process is never walked.</summary>
    private readonly (int Pid, ulong Start)? _script;
    /// <summary>The script's processes a signal's stop has seen (with their start times), killed at the end even if the script left them behind.</summary>
    private readonly Dictionary<int, ulong> _tree = new();

    /// <summary>Whether every process the script leaves behind is killed when it exits (<see cref="CaptureOptions.EndsLeftovers"/>).</summary>
    private readonly bool _endsLeftovers;

    private ScriptRunner(Process process, Task[] pumps, TimeSpan? stopBudget, TimeProvider clock, bool endsLeftovers)
    {
        _endsLeftovers = endsLeftovers;
        _clock = clock;
        _process = process;
        _pumps = pumps;
        _stopBudget = stopBudget;
        // Its start time, read while it is surely running.
        _script = ScriptProcesses.Identify(process.Id);
    }

    /// <summary>Starts the script; a program that cannot be started throws <see cref="System.ComponentModel.Win32Exception"/>.</summary>
    /// <param name="clock">Times the wait for the script after SIGTERM, and the wait for its output.</param>
    public static ScriptRunner Start(CaptureOptions options, string workingDirectory, string run, string experiment, string logs, TimeProvider clock)
    {
        var psi = new ProcessStartInfo(options.FileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in options.Arguments) psi.ArgumentList.Add(a);
        foreach (var (k, v) in options.Environment) psi.Environment[k] = v;
        psi.Environment["GRID_RUN"] = run;
        psi.Environment["GRID_EXPERIMENT"] = experiment;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("The process did not start.");
        var pumps = new[]
        {
            Pump(process.StandardOutput.BaseStream, Path.Combine(logs, "stdout.log")),
            Pump(process.StandardError.BaseStream, Path.Combine(logs, "stderr.log")),
        };
        return new ScriptRunner(process, pumps, options.StopBudget, clock, options.EndsLeftovers);
    }

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code as the system reports it (on Unix 128 + n when signal n ended it).</summary>
    public int ExitCode => _process.ExitCode;

    public Task WaitForExitAsync() => _process.WaitForExitAsync(CancellationToken.None);

    /// <summary>
    /// Sends the script SIGTERM (where there are signals) and waits for it to exit, at most
    /// min(5 s, a third of the stop budget), noting the processes it has started meanwhile so that
    /// what is left of them is killed afterwards. Slurm has signalled them all already; a container's
    /// runtime or kill(1) only this process.
    /// </summary>
    public async Task TerminateAsync()
    {
        if (_process.HasExited) return;
        ScriptProcesses.AddDescendants(_script, _tree);
        if (!ScriptProcesses.Terminate(_process.Id)) return;
        var wait = Min(TimeSpan.FromSeconds(5), (_stopBudget ?? TimeSpan.FromSeconds(15)) / 3);
        var until = _clock.GetUtcNow() + wait;
        while (_clock.GetUtcNow() < until)
        {
            await Task.WhenAny(_process.WaitForExitAsync(CancellationToken.None), Task.Delay(Min(TimeSpan.FromMilliseconds(250), until - _clock.GetUtcNow()), _clock)).ConfigureAwait(false);
            if (_process.HasExited) return;
            ScriptProcesses.AddDescendants(_script, _tree);
        }
    }

    /// <summary>Kills the script's process tree (nothing, once it has exited).</summary>
    public void Kill()
    {
        try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    /// <summary>
    /// The ended children seen on an earlier call, and when they were first seen ended (a timestamp
    /// of the agent's clock, which a change of the wall clock does not move): one is collected only
    /// once it has stayed a zombie for <see cref="UncollectedFor"/>.
    /// </summary>
    private readonly Dictionary<(int Pid, ulong Start), long> _ended = new();

    /// <summary>
    /// How long a child must have stayed a zombie before this process collects it. The runtime
    /// collects the children it started itself (the script, or a credentials helper the S3 client
    /// runs) as soon as their end is signalled, within milliseconds, and must be the one to: taken
    /// from it, it fails fast. A child still uncollected after this long is one the script left
    /// behind; a zombie that keeps its process number a few seconds more costs nothing.
    /// </summary>
    internal static readonly TimeSpan UncollectedFor = TimeSpan.FromSeconds(5);

    /// <summary>
    /// With <see cref="CaptureOptions.EndsLeftovers"/>, while the script runs, collects the processes
    /// it left behind that have ended since: a daemon whose parent exited at once, a stage of a
    /// pipeline whose shell has gone. As their subreaper this process is given them, and each would
    /// otherwise stay a zombie, holding its process number, until the agent exits. (As a container's
    /// PID 1 the runtime collects every child itself, and finds none left here.) Once the script has
    /// exited, <see cref="KillLeftovers"/> ends and collects the rest.
    /// </summary>
    public void ReapEndedOrphans()
    {
        if (!_endsLeftovers || _process.HasExited) return;
        var now = _clock.GetTimestamp();
        var ended = ScriptProcesses.EndedChildren(except: _process.Id);
        foreach (var gone in _ended.Keys.Except(ended).ToList()) _ended.Remove(gone);
        foreach (var child in ended)
        {
            if (!_ended.TryGetValue(child, out var since)) _ended[child] = now;
            else if (_clock.GetElapsedTime(since, now) >= UncollectedFor && ScriptProcesses.Collect(child.Pid)) _ended.Remove(child);
        }
    }

    /// <summary>
    /// Kills what is left of the processes a signal's stop has seen, and with
    /// <see cref="CaptureOptions.EndsLeftovers"/> every process the script left behind.
    /// </summary>
    public void KillLeftovers()
    {
        ScriptProcesses.KillLeftovers(_tree);
        // Read only now the script has exited: its orphans are this process's children by then,
        // however soon it exited after it started them.
        if (_endsLeftovers) ScriptProcesses.EndAdopted(_clock);
    }

    /// <summary>
    /// Waits until the script's output is all in its log files; with <paramref name="until"/>, no
    /// longer than that (a process the script started elsewhere, in another session, may hold its
    /// output open), and false when that time ran out.
    /// </summary>
    public async Task<bool> OutputDoneAsync(DateTimeOffset? until)
    {
        if (until is not { } ends)
        {
            await Task.WhenAll(_pumps).ConfigureAwait(false);
            return true;
        }
        try
        {
            await Task.WhenAll(_pumps).WaitAsync(Max(ends - _clock.GetUtcNow(), TimeSpan.Zero), _clock).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public void Dispose() => _process.Dispose();

    private static async Task Pump(Stream from, string file)
    {
        await using var to = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 4096, FileOptions.Asynchronous);
        var buffer = new byte[8192];
        int n;
        while ((n = await from.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
            await to.FlushAsync().ConfigureAwait(false);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
