using System.Collections;
using System.Globalization;
using System.Management.Automation;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Model;
using GridArtifacts.Core.Launch;

namespace GridArtifacts.Commands;

/// <summary>
/// Starts a script as one experiment, or as a sweep when -Parameter holds lists (each combination
/// once: exp0, exp1, ...). Every experiment runs in a new, empty folder of its own under its capture
/// agent, removed after a final sync that stored every file in it (kept with -KeepWorkingDirectory,
/// or when a file did not reach the store). Returns the run at once; the run goes on after this
/// session closes. -Wait waits with progress.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "GridRun", DefaultParameterSetName = FileSet, SupportsShouldProcess = true)]
[OutputType(typeof(GridRun))]
public sealed class StartGridRunCommand : GridStoreCmdlet
{
    private const string FileSet = "FilePath";
    private const string CommandSet = "Command";

    /// <summary>A script: .ps1 runs in pwsh (-name value), .py in python3 (--name value), anything else directly (--name value).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = FileSet)]
    [ValidateNotNullOrEmpty]
    public string FilePath { get; set; } = "";

    /// <summary>A command line for the system shell; {name} is replaced by the parameter's value, else --name value is appended.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CommandSet)]
    [ValidateNotNullOrEmpty]
    public string Command { get; set; } = "";

    /// <summary>Parameters; a list makes a sweep (@{ lr = 0.1, 0.01; batch = 32, 64 } gives four experiments).</summary>
    [Parameter]
    public Hashtable? Parameter { get; set; }

    /// <summary>The run's name; generated (adorable-mouse-123) when omitted.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>Experiments running at once (with Slurm, the array's %limit); the rest wait as Queued.</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 4;

    /// <summary>More folders whose new and changed files are artifacts of every experiment.</summary>
    [Parameter]
    public string[]? ArtifactPath { get; set; }

    /// <summary>Where the experiments' working folders are made (&lt;root&gt;/&lt;run&gt;.&lt;random&gt;/&lt;exp&gt;, new for each run); ~/.grid/work by default.</summary>
    [Parameter]
    public string? WorkingRoot { get; set; }

    /// <summary>Keeps each experiment's working folder after its final sync (Get-GridExperiment's WorkingDirectory names it); by default it is removed once every file in it is stored.</summary>
    [Parameter]
    public SwitchParameter KeepWorkingDirectory { get; set; }

    /// <summary>Tags on the run (Get-GridRun -Tag finds it; retention's -ExcludeTag keeps it).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(TagCompleter))]
    [ValidateNotNullOrEmpty]
    public string[]? Tag { get; set; }

    /// <summary>What starts the experiments: Local (a supervisor on this machine, the default) or Slurm (one sbatch job array; task i runs expI).</summary>
    [Parameter]
    public GridScheduler Scheduler { get; set; } = GridScheduler.Local;

    /// <summary>Options for the scheduler's submit, as given (sbatch: '--partition=gpu', '--gres=gpu:1', '--time=2:00:00').</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? SchedulerArgument { get; set; }

    /// <summary>Waits for the run to finish, with progress, then returns it.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void ProcessRecord()
    {
        string? named;
        IReadOnlyList<string> tags;
        try
        {
            named = Name is null ? null : GridNames.CheckRunName(Name);
            tags = GridNames.CheckTags(Tag);
        }
        catch (GridException ex) { ThrowTerminatingError(ToErrorRecord(ex)); return; }
        CheckScheduler();

        var parameters = Values(Parameter);
        if (!ShouldProcess(named ?? "a new run", $"Start {Sweep.Expand(parameters).Count} experiment(s)")) return;
        var store = ResolveStore();
        var catalog = OpenCatalog();
        var script = ParameterSetName == FileSet ? ResolvePath(FilePath) : null;
        if (script is not null && !File.Exists(script))
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.NotFound, "ScriptNotFound", $"The script '{script}' does not exist.", script)));
        }
        if (script is not null && parameters is { Count: > 0 } && Path.GetExtension(script).Equals(".ps1", StringComparison.OrdinalIgnoreCase)) CheckScriptTakes(script, parameters.Keys.Order(StringComparer.Ordinal));

        var moduleFolder = Path.GetDirectoryName(typeof(StartGridRunCommand).Assembly.Location)!;
        var agent = AgentExecutable.Find(moduleFolder);
        if (agent is not null && Scheduler == GridScheduler.Local && !(File.Exists(agent) && AgentExecutable.Runs(agent)))
        {
            // On this machine the executable must run (on a cluster, $env:GRID_AGENT is the nodes' path).
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.NotFound, "AgentNotFound",
                $"${AgentExecutable.Variable} names '{agent}', which is not there or is not a grid-agent of this release that runs here; nothing was started. Unset it for the module's own grid-agent, or set it to '{AgentExecutable.PwshOnly}' to run the experiments under pwsh.", agent)));
        }
        var request = new LaunchRequest
        {
            Name = named,
            Tags = tags,
            Script = script,
            Command = Command,
            Parameters = parameters,
            ThrottleLimit = ThrottleLimit,
            ArtifactPath = (ArtifactPath ?? Array.Empty<string>()).Select(ResolvePath).ToArray(),
            WorkRoot = ResolvePath(WorkingRoot ?? ModuleFolders.DefaultWorkRoot),
            KeepWorkingDirectory = KeepWorkingDirectory.IsPresent,
            Scheduler = Scheduler,
            SchedulerArguments = SchedulerArgument ?? Array.Empty<string>(),
            Pwsh = PwshCommand(),
            ModuleFolder = moduleFolder,
            Agent = agent,
            Version = typeof(StartGridRunCommand).Assembly.GetName().Version?.ToString(3) ?? "",
        };
        WriteVerbose(agent is null
            ? $"The experiments run under pwsh: no grid-agent for {AgentExecutable.Platform} in '{moduleFolder}' (or ${AgentExecutable.Variable} is '{AgentExecutable.PwshOnly}')."
            : $"The experiments run under {agent}.");
        var launcher = new RunLauncher(catalog, store.Location);
        var run = "";
        RunAndDrain(async (post, ct) => run = await launcher.StartAsync(request, post, ct).ConfigureAwait(false));
        if (!Wait)
        {
            WriteObject(catalog.Runs.GetRunAsync(run, CancelToken).GetAwaiter().GetResult());
            return;
        }
        GridRun? current = null;
        RunAndDrain(async (post, ct) => current = await launcher.WaitAsync(run, r => current = r, post, ct).ConfigureAwait(false), () =>
        {
            var r = current;
            return r is null ? null : new ProgressRecord(3, $"Run {run}", $"{r.Status}, {r.ExperimentCount} experiment(s)");
        });
        IReadOnlyList<GridExperiment> ended = Array.Empty<GridExperiment>();
        RunAndDrain(async (post, ct) =>
        {
            var read = await catalog.Runs.GetExperimentsAsync(run, ct).ConfigureAwait(false);
            foreach (var e in read.Errors) post(e);
            ended = read.Items;
        });
        ReportKeptFolders(ended, run);
        WriteObject(current);
        ReportUnsucceeded(ended);
    }

    /// <summary>
    /// After -Wait, one non-terminating error per experiment that failed or was lost (so $? is false
    /// and -ErrorAction Stop throws), saying how it ended and where its output is. A Stopped
    /// experiment was stopped on request (Stop-GridRun, Ctrl+C, a scheduler's cancel or time
    /// limit): a warning, not an error.
    /// </summary>
    private void ReportUnsucceeded(IReadOnlyList<GridExperiment> ended)
    {
        foreach (var e in ended.OrderBy(e => e.Index))
        {
            if (e.Status == GridStatus.Succeeded) continue;
            var how = e.Signal is not null ? $" by {e.Signal}" : e.ExitCode is { } code ? $" with exit code {code}" : "";
            var why = e.Reason is null ? "" : $" ({e.Reason})";
            if (e.Status == GridStatus.Stopped)
            {
                WriteWarning($"{e.Id} was Stopped{how}{why}; what it wrote is synced.");
                continue;
            }
            var status = e.Status == GridStatus.Lost ? "is Lost: its agent stopped writing a heartbeat" : e.Status.ToString();
            WriteError(ToErrorRecord(new GridException(GridErrorKind.Failed, "ExperimentFailed", $"{e.Id} {status}{how}{why}. What it printed: Get-GridLog {e.Id} -Stream StandardError (and Get-GridLog {e.Id} for its output).", e)));
        }
    }

    /// <summary>Says where each experiment's folder is when it was kept (asked for, or a file in it is not in the store).</summary>
    private void ReportKeptFolders(IReadOnlyList<GridExperiment> ended, string run)
    {
        foreach (var e in ended.Where(e => e.WorkingDirectory is not null))
        {
            if (KeepWorkingDirectory) WriteVerbose($"{e.Id} worked in '{e.WorkingDirectory}' (kept).");
            else WriteWarning($"Kept the working folder of {e.Id}, '{e.WorkingDirectory}': not every file in it is in the store (see its Sync). " +
                $"Remove-GridWorkingDirectory -Run {run} -Force removes it.");
        }
    }

    /// <summary>-SchedulerArgument only with a scheduler that takes it, and never the options the module sets itself.</summary>
    private void CheckScheduler()
    {
        if (SchedulerArgument is not null && Scheduler == GridScheduler.Local)
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "SchedulerArgumentNeedsScheduler", "-SchedulerArgument passes options to a cluster's scheduler: add -Scheduler Slurm, or leave -SchedulerArgument out to run on this machine.", SchedulerArgument)));
        }
        foreach (var a in SchedulerArgument ?? Array.Empty<string>())
        {
            if (Slurm.ReservedOption(a) is { } reserved)
            {
                ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "SchedulerArgumentReserved", $"-SchedulerArgument '{a}': {reserved} is set by Start-GridRun (one array task per experiment, -ThrottleLimit at once); nothing was started.", a)));
            }
        }
        if (Scheduler == GridScheduler.Slurm && !SlurmClient.Has("sbatch"))
        {
            ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.NotFound, "SchedulerNotFound",
                "Slurm's sbatch is not on PATH; nothing was started. Run Start-GridRun -Scheduler Slurm where Slurm's commands are (a login node of the cluster).", "sbatch")));
        }
    }

    /// <summary>Each parameter's values as text (a list's each, a single value as one).</summary>
    private static Dictionary<string, IReadOnlyList<string>>? Values(Hashtable? parameters)
    {
        if (parameters is null) return null;
        var d = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in parameters)
        {
            d[Text(e.Key)] = e.Value is IEnumerable list and not string ? list.Cast<object>().Select(Text).ToList() : new[] { Text(e.Value) };
        }
        return d;
    }

    private static string Text(object? o) => Sweep.Text(o is PSObject p ? p.BaseObject : o);

    /// <summary>The parameters the .ps1 script takes (null: any name), read once per call.</summary>
    private ScriptParameters? _takes;

    /// <summary>
    /// Refuses (terminating, before anything is created) -Parameter names the .ps1 script does not
    /// take: pwsh -File would fail each experiment on them, or, with no param block, pass them to
    /// $args unnoticed, and a sweep over such a name makes experiments that differ in nothing.
    /// </summary>
    private void CheckScriptTakes(string script, IEnumerable<string> names)
    {
        _takes ??= ScriptParameters.Read(script);
        var unknown = names.Where(n => !_takes.Takes(n)).ToList();
        if (unknown.Count == 0) return;
        var list = string.Join(", ", unknown.Select(n => "-" + n));
        var takes = _takes.Names.Count == 0
            ? "it takes no named parameters (it has no param block and does not read $args)"
            : $"it takes {string.Join(", ", _takes.Names.Select(n => "-" + n))}";
        ThrowTerminatingError(ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "UnknownScriptParameter",
                $"The script '{script}' has no parameter {list}: {takes}. Nothing was started. Add {(unknown.Count == 1 ? "it" : "them")} to the script's param block, or leave {(unknown.Count == 1 ? "it" : "them")} out of -Parameter.", unknown.ToArray())));
    }

    /// <summary>What a .ps1 script's param block accepts, as pwsh -File binds -name value.</summary>
    internal sealed class ScriptParameters
    {
        private readonly HashSet<string> _names = new(StringComparer.OrdinalIgnoreCase);
        private bool _any;

        /// <summary>The declared names, in the order of the param block.</summary>
        public List<string> Names { get; } = new();

        public static ScriptParameters Read(string script)
        {
            var result = new ScriptParameters();
            var ast = System.Management.Automation.Language.Parser.ParseFile(script, out _, out var errors);
            // A script pwsh cannot parse fails on its own, with pwsh's own message; nothing is refused for it here.
            if (errors.Length > 0) { result._any = true; return result; }
            // -name value that no parameter binds lands in $args (in a script that is not advanced): a script that reads $args takes it.
            var readsArgs = ast.Find(a => a is System.Management.Automation.Language.VariableExpressionAst v
                && v.VariablePath.UserPath.Equals("args", StringComparison.OrdinalIgnoreCase), searchNestedScriptBlocks: false) is not null;
            var block = ast.ParamBlock;
            // Parameters a dynamicparam block adds are known only when it runs: any name may be one.
            if (ast.DynamicParamBlock is not null) { result._any = true; return result; }
            if (block is null)
            {
                result._any = readsArgs;
                return result;
            }
            foreach (var parameter in block.Parameters)
            {
                var name = parameter.Name.VariablePath.UserPath;
                result.Names.Add(name);
                result._names.Add(name);
                foreach (var attribute in parameter.Attributes.OfType<System.Management.Automation.Language.AttributeAst>())
                {
                    var type = attribute.TypeName.FullName;
                    if (type.Equals("Alias", StringComparison.OrdinalIgnoreCase) || type.Equals("System.Management.Automation.AliasAttribute", StringComparison.OrdinalIgnoreCase))
                    {
                        foreach (var alias in attribute.PositionalArguments.OfType<System.Management.Automation.Language.StringConstantExpressionAst>()) result._names.Add(alias.Value);
                    }
                    // A parameter that takes the remaining arguments takes any -name value.
                    if (attribute.NamedArguments.Any(n => n.ArgumentName.Equals("ValueFromRemainingArguments", StringComparison.OrdinalIgnoreCase)
                            && (n.ExpressionOmitted || n.Argument is System.Management.Automation.Language.VariableExpressionAst { VariablePath.UserPath: "true" })))
                    {
                        result._any = true;
                    }
                }
            }
            // [CmdletBinding()] or [Parameter()] makes an advanced script: the common parameters bind too.
            var advanced = block.Attributes.Any(a => a.TypeName.Name.Equals("CmdletBinding", StringComparison.OrdinalIgnoreCase))
                || block.Parameters.Any(p => p.Attributes.Any(a => a.TypeName.Name.Equals("Parameter", StringComparison.OrdinalIgnoreCase)));
            if (advanced)
            {
                result._names.UnionWith(Cmdlet.CommonParameters);
                result._names.UnionWith(CommonAliases);
            }
            else result._any |= readsArgs;
            return result;
        }

        /// <summary>The common parameters' aliases (-ea, -wa, -vb, ...), as PowerShell declares them.</summary>
        private static readonly string[] CommonAliases = typeof(System.Management.Automation.Internal.CommonParameters).GetProperties()
            .SelectMany(p => p.GetCustomAttributes(typeof(AliasAttribute), false).Cast<AliasAttribute>().SelectMany(a => a.AliasNames)).ToArray();

        /// <summary>True for a declared name or alias, or a prefix of exactly one (pwsh binds -ep to -epochs).</summary>
        public bool Takes(string name)
        {
            if (_any || _names.Contains(name)) return true;
            return name.Length > 0 && _names.Count(n => n.StartsWith(name, StringComparison.OrdinalIgnoreCase)) == 1;
        }
    }

    /// <summary>This PowerShell's own executable (and its pwsh.dll when it runs under the dotnet host).</summary>
    internal static string[] PwshCommand()
    {
        var exe = Environment.ProcessPath ?? "pwsh";
        var home = Path.GetDirectoryName(typeof(PSObject).Assembly.Location)!;
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" ? new[] { exe, Path.Combine(home, "pwsh.dll") } : new[] { exe };
    }
}
