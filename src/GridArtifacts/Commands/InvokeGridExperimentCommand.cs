using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Runtime.InteropServices;
using GridArtifacts.Core.Capture;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Runs one experiment in the foreground under the capture agent: every file the command creates or
/// changes is synced while it runs and once more when it ends; the status is written only after
/// that. For jobs a cluster scheduler starts. The command's exit code is $LASTEXITCODE afterwards.
/// SIGTERM and SIGINT to this process stop the experiment rather than the process: the command is
/// sent SIGTERM, and the final sync, sealed manifest and status are done within the time
/// GRID_SIGNAL_GRACE (seconds until the scheduler's SIGKILL) leaves.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "GridExperiment")]
[OutputType(typeof(GridExperiment))]
public sealed class InvokeGridExperimentCommand : GridStoreCmdlet
{
    /// <summary>The run; a new name such as adorable-mouse-123 when omitted.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Run { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Experiment { get; set; } = "exp0";

    /// <summary>The command and its arguments (write them after --).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromRemainingArguments = true)]
    [ValidateNotNullOrEmpty]
    public string[] Command { get; set; } = Array.Empty<string>();

    /// <summary>The folder the command runs in; the current location by default. Its new and changed files are artifacts.</summary>
    [Parameter]
    public string? WorkingDirectory { get; set; }

    /// <summary>
    /// Removes -WorkingDirectory at the end when the final sync stored every file in it (as Start-GridRun
    /// does with the folders it makes); otherwise keeps it and says where and why. Needs -WorkingDirectory.
    /// </summary>
    [Parameter]
    public SwitchParameter RemoveWorkingDirectory { get; set; }

    /// <summary>More folders whose new and changed files are artifacts.</summary>
    [Parameter]
    public string[]? ArtifactPath { get; set; }

    /// <summary>Parameters recorded with the experiment and passed in the environment as GRID_PARAM_NAME.</summary>
    [Parameter]
    public Hashtable? Parameter { get; set; }

    /// <summary>Tags on the experiment, put on once this agent holds it.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }

    /// <summary>Runs only an experiment that waits as Queued (Start-GridRun or a scheduler queued it); one removed meanwhile is not created again.</summary>
    [Parameter]
    public SwitchParameter Queued { get; set; }

    protected override void ProcessRecord()
    {
        string run, experiment;
        IReadOnlyList<string> tags;
        try
        {
            run = GridNames.CheckRunName(Run ?? GridNames.NewRunName());
            experiment = GridNames.CheckExperimentName(Experiment);
            tags = GridNames.CheckTags(Tag);
        }
        catch (GridException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            return;
        }
        if (RemoveWorkingDirectory && WorkingDirectory is null)
        {
            // The current location is the user's own folder: it is never removed.
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "RemoveNeedsWorkingDirectory", "-RemoveWorkingDirectory removes the folder -WorkingDirectory names: give one (the current location is never removed).", null)));
        }
        var catalog = OpenCatalog();
        var parameters = ToDictionary(Parameter);
        var options = new CaptureOptions
        {
            FileName = Command[0],
            Arguments = Command.Skip(1).ToArray(),
            WorkingDirectory = ResolvePath(WorkingDirectory ?? "."),
            ArtifactRoots = (ArtifactPath ?? Array.Empty<string>()).Select(ResolvePath).ToArray(),
            Parameters = parameters,
            Environment = parameters.ToDictionary(p => "GRID_PARAM_" + p.Key.ToUpperInvariant(), p => p.Value),
            Queued = Queued,
            Tags = tags,
            StopBudget = StopBudget(),
            RemoveWorkingDirectory = RemoveWorkingDirectory,
        };
        var exitCode = 0;
        var agent = new CaptureAgent(catalog, run, experiment, options);
        // A scheduler's SIGTERM (Slurm, Kubernetes, AWS Batch, before their SIGKILL) and SIGINT stop
        // the agent, which ends the experiment, instead of ending this process: the runtime's own
        // exit would lose the final sync, and the experiment would read as Lost.
        var registrations = new List<PosixSignalRegistration>();
        void OnSignal(PosixSignalContext context) => context.Cancel = agent.StopBySignal(context.Signal.ToString());
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT })
        {
            try { registrations.Add(PosixSignalRegistration.Create(signal, OnSignal)); }
            catch (PlatformNotSupportedException) { }
        }
        try
        {
            RunAndDrain(async (post, ct) =>
            {
                agent.Warning += w => post(new WarningMessage(w));
                exitCode = await agent.RunAsync(ct).ConfigureAwait(false);
                try
                {
                    post(await catalog.Runs.GetLabelledExperimentAsync(run, experiment, CancellationToken.None).ConfigureAwait(false));
                }
                catch (GridException ex) when (ex.Kind == GridErrorKind.NotFound)
                {
                    // Removed (Remove-GridRun -Force) right after its final sync: the agent's work is done.
                    post(new WarningMessage($"{GridNames.ExperimentId(run, experiment)} ended and was then removed from the store: {ex.Message}"));
                }
            }, stopGrace: options.StopBudget + TimeSpan.FromSeconds(2)); // Ctrl+C stops the pipeline too: the end is waited for
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
        SessionState.PSVariable.Set(new PSVariable("global:LASTEXITCODE", exitCode));
    }

    /// <summary>The time the end may take after a signal, from GRID_SIGNAL_GRACE (a bad value is the default, with a warning).</summary>
    private TimeSpan StopBudget()
    {
        var budget = CaptureOptions.StopBudgetFor(Environment.GetEnvironmentVariable(CaptureOptions.SignalGraceVariable), out var problem);
        if (problem is not null) WriteWarning(problem);
        return budget;
    }

    internal static Dictionary<string, string> ToDictionary(Hashtable? table)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (table is null) return d;
        foreach (DictionaryEntry e in table)
        {
            d[Convert.ToString(e.Key, CultureInfo.InvariantCulture)!] = Convert.ToString(e.Value, CultureInfo.InvariantCulture) ?? "";
        }
        return d;
    }
}
