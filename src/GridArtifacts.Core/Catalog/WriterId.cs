namespace GridArtifacts.Core;

/// <summary>Who wrote a record or holds a claim: an id for one creator or writer.</summary>
public static class WriterId
{
    /// <summary>A random id for one creator or writer (<paramref name="kind"/>: agent, run, stop, end, import): host, process and a random part.</summary>
    public static string New(string kind) =>
        $"{kind}/{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..12]}";
}
