using System.Runtime.InteropServices;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The process's SIGTERM and SIGINT, taken from the moment it is made and handed to the experiment's
/// agent once there is one (<see cref="CaptureAgent.StopBySignal"/>). A signal that comes before the
/// agent is kept (<see cref="Early"/>) rather than ending the process: as a container's first process,
/// one with no handler would be dropped altogether. Once the agent's run is over, a signal does what
/// it would do without the relay.
/// </summary>
public sealed class SignalRelay : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = new();
    private CaptureAgent? _agent;
    private string? _early;

    public SignalRelay()
    {
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT })
        {
            try { _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal)); }
            catch (PlatformNotSupportedException) { }
        }
    }

    /// <summary>The first signal that came before an agent was attached (SIGTERM, SIGINT), or null.</summary>
    public string? Early => Volatile.Read(ref _early);

    /// <summary>The exit status a process ended by <see cref="Early"/> would have: 128 + its number.</summary>
    public int EarlyExitCode => Early == "SIGINT" ? 130 : 143;

    /// <summary>From now on signals stop <paramref name="agent"/>; one that came before is given to it at once.</summary>
    public void Attach(CaptureAgent agent)
    {
        Volatile.Write(ref _agent, agent);
        if (Early is { } signal) agent.StopBySignal(signal);
    }

    private void OnSignal(PosixSignalContext context)
    {
        var name = context.Signal.ToString();
        if (Volatile.Read(ref _agent) is { } agent)
        {
            context.Cancel = agent.StopBySignal(name);
            return;
        }
        Interlocked.CompareExchange(ref _early, name, null);
        context.Cancel = true;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}
