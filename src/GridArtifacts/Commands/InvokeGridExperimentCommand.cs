using System.Collections;
using System.Globalization;
using System.Management.Automation;
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
        var request = new ExperimentRequest
        {
            Run = Run,
            Experiment = Experiment,
            Command = Command,
            WorkingDirectory = ResolvePath(WorkingDirectory ?? "."),
            WorkingDirectoryGiven = WorkingDirectory is not null,
            RemoveWorkingDirectory = RemoveWorkingDirectory,
            ArtifactRoots = (ArtifactPath ?? Array.Empty<string>()).Select(ResolvePath).ToArray(),
            Parameters = ToDictionary(Parameter),
            Tags = Tag,
            Queued = Queued,
        };
        string run, experiment;
        CaptureOptions options;
        try
        {
            (run, experiment, options) = ExperimentInvocation.Prepare(request, WriteWarning);
        }
        catch (GridException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            return;
        }
        var catalog = OpenCatalog();
        var exitCode = 0;
        RunAndDrain(async (post, ct) =>
        {
            var outcome = await ExperimentInvocation.RunAsync(catalog, run, experiment, options, w => post(new WarningMessage(w)), ct).ConfigureAwait(false);
            exitCode = outcome.ExitCode;
            if (outcome.Experiment is not null) post(outcome.Experiment);
        }, stopGrace: options.StopBudget + TimeSpan.FromSeconds(2)); // Ctrl+C stops the pipeline too: the end is waited for
        SessionState.PSVariable.Set(new PSVariable("global:LASTEXITCODE", exitCode));
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
