using System.Runtime.InteropServices;

namespace GridArtifacts.Core.Launch;

/// <summary>
/// Where grid-agent is: the capture agent as one native executable (src/GridArtifacts.Agent), shipped
/// in the module as <c>agent/&lt;platform&gt;/grid-agent</c>. Runs on this machine and Slurm's tasks start
/// it rather than pwsh; where there is none for a platform, they run under pwsh as before.
/// </summary>
public static class AgentExecutable
{
    /// <summary>
    /// The executable experiments run with: a path (on a cluster's nodes, the same path on every node),
    /// or <see cref="PwshOnly"/> to run them under pwsh.
    /// </summary>
    public const string Variable = "GRID_AGENT";

    /// <summary>The value of <see cref="Variable"/> that runs experiments under pwsh.</summary>
    public const string PwshOnly = "pwsh";

    public const string Name = "grid-agent";

    /// <summary>This machine's platform as the module's agent folder names it: linux-x64, linux-arm64, osx-arm64, win-x64.</summary>
    public static string Platform
    {
        get
        {
            var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
            var arch = RuntimeInformation.OSArchitecture switch
            {
                Architecture.X64 => "x64",
                Architecture.Arm64 => "arm64",
                var other => other.ToString().ToLowerInvariant(),
            };
            return $"{os}-{arch}";
        }
    }

    /// <summary>The module's own executable for <paramref name="platform"/> (it may not be there).</summary>
    public static string InModule(string moduleFolder, string platform) =>
        Path.Combine(moduleFolder, "agent", platform, platform.StartsWith("win", StringComparison.Ordinal) ? Name + ".exe" : Name);

    /// <summary>
    /// The executable to run experiments with, or null to run them under pwsh: <see cref="Variable"/>
    /// when set (<see cref="PwshOnly"/>: null), else the module's own for this platform when it ships one.
    /// </summary>
    public static string? Find(string moduleFolder)
    {
        var configured = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(configured)) return configured.Trim() == PwshOnly ? null : configured.Trim();
        var own = InModule(moduleFolder, Platform);
        return File.Exists(own) && Executable(own) && Runs(own) ? own : null;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Answered = new(StringComparer.Ordinal);

    /// <summary>
    /// Whether the executable runs here and is this release's (<c>grid-agent version</c>, a few
    /// milliseconds, asked once per process): one built for a newer C library than this machine's
    /// does not start, and the experiments then run under pwsh rather than never. One that has not
    /// answered within 10 s on <paramref name="clock"/> (the system's by default) does not run.
    /// </summary>
    public static bool Runs(string path, TimeProvider? clock = null) => Answered.GetOrAdd(path, static (p, clock) =>
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo(p) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("version");
            using var process = System.Diagnostics.Process.Start(psi);
            if (process is null) return false;
            var said = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10), clock);
            try { process.WaitForExitAsync(limit.Token).GetAwaiter().GetResult(); }
            catch (OperationCanceledException) { process.Kill(); return false; }
            var version = typeof(AgentExecutable).Assembly.GetName().Version?.ToString(3);
            return process.ExitCode == 0 && said.Result.Trim() == $"{Name} {version}";
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            return false;
        }
    }, clock ?? TimeProvider.System);

    /// <summary>
    /// Whether the file may be run, made so when it lost its mode on the way (a module installed from
    /// a .nupkg, which is a zip, has none); false when that cannot be done.
    /// </summary>
    private static bool Executable(string path)
    {
        if (OperatingSystem.IsWindows()) return true;
        try
        {
            var mode = File.GetUnixFileMode(path);
            const UnixFileMode run = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            if ((mode & UnixFileMode.UserExecute) != 0) return true;
            File.SetUnixFileMode(path, mode | run);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
