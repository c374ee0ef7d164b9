using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// Signals to the script's processes when the agent itself was signalled: SIGTERM to the script
/// first (it may save its state), and afterwards SIGKILL to whatever of its process tree is left,
/// including children it left behind when it exited (they would hold its output pipes open).
/// </summary>
internal static class ScriptProcesses
{
    private const int SIGTERM = 15; // the same number on Linux and macOS
    private const int SIGKILL = 9;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Sends SIGTERM to one process; false where there are no POSIX signals (Windows) or it is gone.</summary>
    public static bool Terminate(int pid) => Send(pid, SIGTERM);

    /// <summary>Sends signal <paramref name="signal"/> (its number) to one process; false where there are no POSIX signals (Windows) or it is gone.</summary>
    public static bool Send(int pid, int signal)
    {
        if (OperatingSystem.IsWindows()) return false;
        try { return Kill(pid, signal) == 0; }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>A running process and its start time (Linux), or null where /proc does not say.</summary>
    public static (int Pid, ulong Start)? Identify(int pid) => ReadStat(pid) is { } stat ? (pid, stat.Start) : null;

    /// <summary>
    /// The processes below <paramref name="root"/>, each with its start time (so a number the system
    /// has since given to another process is never signalled). The root must still be the process
    /// identified (the same start time) before and after the walk, and a descendant cannot have
    /// started before it: once the script has exited, its number may belong to a process of anyone's,
    /// whose children are not the script's. Read from /proc, so Linux only: elsewhere none are known
    /// and only what <see cref="Process.Kill(bool)"/> finds is killed.
    /// </summary>
    public static void AddDescendants((int Pid, ulong Start)? root, Dictionary<int, ulong> into)
    {
        if (!OperatingSystem.IsLinux() || root is not var (pid, rootStart)) return;
        if (ReadStat(pid)?.Start != rootStart) return;
        var children = new Dictionary<int, List<int>>();
        var started = new Dictionary<int, ulong>();
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var p)) continue;
                if (ReadStat(p) is not { } stat) continue;
                started[p] = stat.Start;
                if (!children.TryGetValue(stat.Parent, out var list)) children[stat.Parent] = list = new List<int>();
                list.Add(p);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; }
        if (ReadStat(pid)?.Start != rootStart) return; // it ended during the walk: what was read may be another's
        var queue = new Queue<int>();
        queue.Enqueue(pid);
        while (queue.Count > 0)
        {
            if (!children.TryGetValue(queue.Dequeue(), out var list)) continue;
            foreach (var c in list)
            {
                if (c == pid || into.ContainsKey(c) || started[c] < rootStart) continue;
                into[c] = started[c];
                queue.Enqueue(c);
            }
        }
    }

    [DllImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static extern int Prctl(int option, nint arg2, nint arg3, nint arg4, nint arg5);

    private const int PR_SET_CHILD_SUBREAPER = 36;

    /// <summary>
    /// Makes this process the one that processes its descendants leave behind are given to (Linux's
    /// child subreaper), so <see cref="AddAdopted"/> finds them once the script has exited. Only for a
    /// process that runs one experiment (grid-agent): every orphan below it is that experiment's.
    /// </summary>
    public static bool BecomeSubreaper()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return Prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0; }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>
    /// The processes this process adopted, with everything below them: once it is a subreaper and
    /// runs one experiment, every child it did not start itself is what the script left behind (the
    /// script, once it has exited, is a zombie and is passed over).
    /// </summary>
    public static void AddAdopted(Dictionary<int, ulong> into)
    {
        if (!OperatingSystem.IsLinux()) return;
        var roots = new List<(int, ulong)>();
        foreach (var p in Children())
        {
            if (ReadStat(p) is { } stat) roots.Add((p, stat.Start));
        }
        foreach (var (pid, start) in roots)
        {
            into[pid] = start;
            AddDescendants((pid, start), into);
        }
    }

    /// <summary>
    /// Kills every process this subreaper adopted, again while more appear (one that forked as it was
    /// killed), at most <paramref name="rounds"/> times, and reaps the adopted ones that have ended, so
    /// none is left a zombie. Returns how many were killed.
    /// </summary>
    /// <param name="clock">Times the pauses between rounds and while waiting to reap (the agent's clock).</param>
    public static int EndAdopted(TimeProvider clock, int rounds = 20)
    {
        var killed = new Dictionary<int, ulong>();
        for (var round = 0; round < rounds; round++)
        {
            var found = new Dictionary<int, ulong>();
            AddAdopted(found);
            if (found.Count == 0) break;
            KillLeftovers(found);
            foreach (var (pid, start) in found) killed[pid] = start;
            Pause(clock); // the kernel hands their children over as they die
        }
        foreach (var pid in killed.Keys) Reap(pid, clock);
        return killed.Count;
    }

    /// <summary>
    /// This process's children that have ended and wait to be collected (zombies), each with its start
    /// time, but <paramref name="except"/> (the script, which the runtime waits for).
    /// </summary>
    public static List<(int Pid, ulong Start)> EndedChildren(int except)
    {
        var ended = new List<(int, ulong)>();
        if (!OperatingSystem.IsLinux()) return ended;
        foreach (var pid in Children())
        {
            if (pid != except && ReadStatus(pid) is { State: 'Z' } stat) ended.Add((pid, stat.Start));
        }
        return ended;
    }

    /// <summary>Collects the exit of a child that has ended (a zombie); false if it was not there to collect.</summary>
    public static bool Collect(int pid)
    {
        try { return WaitPid(pid, out _, WNOHANG) == pid; }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>
    /// This process's children, ended ones included: each of its threads' list in /proc (the kernel
    /// gives an orphan to any one of them); where a kernel has no such list, the processes whose
    /// parent this is, from every /proc/&lt;pid&gt;/stat.
    /// </summary>
    private static List<int> Children()
    {
        var found = new List<int>();
        var listed = false;
        try
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                string text;
                try { text = File.ReadAllText(Path.Combine(task, "children")); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { continue; } // a thread that has ended, or no list
                listed = true;
                foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    if (int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) found.Add(pid);
            }
            if (listed) return found;
            var self = Environment.ProcessId;
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var p) && ReadStatus(p)?.Parent == self) found.Add(p);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
        return found;
    }

    private const int WNOHANG = 1;

    /// <summary>A short pause on <paramref name="clock"/> (10 ms), waited for where the caller is not asynchronous.</summary>
    private static void Pause(TimeProvider clock) => Task.Delay(TimeSpan.FromMilliseconds(10), clock).GetAwaiter().GetResult();

    [DllImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static extern int WaitPid(int pid, out int status, int options);

    /// <summary>Collects an adopted process's exit once it has died (SIGKILL is sent first), waiting at most a second.</summary>
    private static void Reap(int pid, TimeProvider clock)
    {
        try
        {
            for (var i = 0; i < 100; i++)
            {
                var r = WaitPid(pid, out _, WNOHANG);
                if (r != 0) return; // reaped, or not ours to reap (-1)
                Pause(clock);
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { }
    }

    /// <summary>SIGKILL to each process of <paramref name="processes"/> still running as the same process (same start time).</summary>
    public static void KillLeftovers(Dictionary<int, ulong> processes)
    {
        if (OperatingSystem.IsWindows()) return;
        foreach (var (pid, start) in processes)
        {
            if (ReadStat(pid) is { } stat && stat.Start == start)
            {
                try { Kill(pid, SIGKILL); }
                catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return; }
            }
        }
    }

    /// <summary>The parent and start time (clock ticks since boot) of a running process (not a zombie), from /proc/&lt;pid&gt;/stat.</summary>
    private static (int Parent, ulong Start)? ReadStat(int pid) =>
        ReadStatus(pid) is { } s && s.State != 'Z' ? (s.Parent, s.Start) : null;

    /// <summary>The state (R, S, Z, ...), parent and start time (clock ticks since boot) of a process, from /proc/&lt;pid&gt;/stat.</summary>
    private static (char State, int Parent, ulong Start)? ReadStatus(int pid)
    {
        string text;
        try { text = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/stat"); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return null; }
        // pid (comm) state ppid ... : the name may hold spaces and parentheses, so fields count from the last ')'.
        var close = text.LastIndexOf(')');
        if (close < 0) return null;
        var fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is the state, [1] the parent, [19] the start time (fields 3, 4 and 22 of proc(5)).
        if (fields.Length < 20 || fields[0].Length != 1) return null;
        if (!int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)) return null;
        if (!ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start)) return null;
        return (fields[0][0], parent, start);
    }
}
