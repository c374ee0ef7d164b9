using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using GridArtifacts.Commands;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>
/// The module's cmdlets hosted in-process with the PowerShell SDK: one runspace whose Grid cmdlets
/// all use <paramref name="store"/> by default, so no process-wide environment variable is touched.
/// </summary>
public sealed class ModuleHost(string store, string? location = null) : IDisposable
{
    public Runspace Runspace { get; } = Open(store, location);

    private static Runspace Open(string store, string? location)
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(new[] { typeof(GetGridRunCommand).Assembly.Location });
        var runspace = RunspaceFactory.CreateRunspace(iss);
        runspace.Open();
        using var ps = PowerShell.Create();
        ps.Runspace = runspace;
        ps.AddScript("$PSDefaultParameterValues['*-Grid*:Store'] = $args[0]; if ($args[1]) { Set-Location -LiteralPath $args[1] }").AddArgument(store).AddArgument(location);
        ps.Invoke();
        return runspace;
    }

    /// <summary>Output and errors; with <paramref name="terminatingAsError"/>, a terminating error is the last error instead of an exception.</summary>
    public (Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors) Invoke(string script, object[] args, bool terminatingAsError = false)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = Runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        try
        {
            var output = ps.Invoke();
            return (output, ps.Streams.Error.ToList());
        }
        catch (RuntimeException ex) when (terminatingAsError)
        {
            return (new Collection<PSObject>(), ps.Streams.Error.Append(ex.ErrorRecord).ToList());
        }
    }

    /// <summary>Output, asserting that there was no error.</summary>
    public Collection<PSObject> Run(string script, params object[] args)
    {
        var (output, errors) = Invoke(script, args);
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors.Select(e => e.ToString())));
        return output;
    }

    public void Dispose() => Runspace.Dispose();
}
