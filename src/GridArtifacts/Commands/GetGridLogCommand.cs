using System.Management.Automation;
using System.Text;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>The output a captured experiment's script wrote, kept with the experiment.</summary>
[Cmdlet(VerbsCommon.Get, "GridLog")]
[OutputType(typeof(string))]
public sealed class GetGridLogCommand : GridStoreCmdlet
{
    /// <summary>An experiment id (run-expN), or a run with -Experiment.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunOrExperimentCompleter))]
    [ValidateNotNullOrEmpty]
    public string Run { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ExperimentNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Experiment { get; set; }

    /// <summary>Which output: StandardOutput (default) or StandardError.</summary>
    [Parameter]
    [ValidateSet("StandardOutput", "StandardError")]
    public string Stream { get; set; } = "StandardOutput";

    protected override void ProcessRecord()
    {
        var (run, exp) = GridNames.SplitTarget(Run);
        exp ??= Experiment ?? "exp0";
        var catalog = OpenCatalog();
        RunAndDrain(async (post, ct) =>
        {
            var bytes = await catalog.Runs.ReadLogAsync(run, exp, Stream == "StandardError" ? "stderr" : "stdout", ct).ConfigureAwait(false);
            if (bytes is null)
            {
                await catalog.Runs.GetExperimentAsync(run, exp, ct).ConfigureAwait(false); // says what is missing
                post(new GridException(GridErrorKind.NotFound, "LogNotFound", $"{GridNames.ExperimentId(run, exp)} has no {Stream} log (it was not started by a capture agent, or has written nothing yet).", GridNames.ExperimentId(run, exp)));
                return;
            }
            using var reader = new StringReader(Encoding.UTF8.GetString(bytes));
            while (reader.ReadLine() is { } line) post(line);
        });
    }
}
