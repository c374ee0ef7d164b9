using System.Collections;
using System.Diagnostics;
using System.Globalization;
using System.Management.Automation;
using System.Text.Json;
using GridArtifacts.Core;
using GridArtifacts.Core.Capture;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using GridArtifacts.Scheduling;

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

        var sweep = Expand(Parameter);
        if (!ShouldProcess(named ?? "a new run", $"Start {sweep.Count} experiment(s)")) return;
        var store = ResolveStore();
        var catalog = OpenCatalog();
        var workRoot = ResolvePath(WorkingRoot ?? ModuleFolders.DefaultWorkRoot);
        var script = ParameterSetName == FileSet ? ResolvePath(FilePath) : null;
        if (script is not null && !File.Exists(script))
        {
            ThrowTerminatingError(new ErrorRecord(new FileNotFoundException($"The script '{script}' does not exist.", script), "ScriptNotFound", ErrorCategory.ObjectNotFound, script));
        }

        var commands = sweep.Select(p => CommandFor(script, p)).ToList();
        var run = "";
        RunAndDrain(async (post, ct) =>
        {
            var now = catalog.Clock.GetUtcNow();
            RunRecord Record(string name) => new() { Name = name, Created = now, Command = script ?? Command, Parameters = ToText(Parameter) };
            // A taken name is refused (RunExists) and nothing of that run changes; a generated one is drawn again.
            if (named is not null) await catalog.Writer.CreateRunAsync(Record(named), ct, tags).ConfigureAwait(false);
            run = named ?? await catalog.Writer.CreateRunWithNewNameAsync(Record, ct, tags).ConfigureAwait(false);
            await catalog.Writer.QueueExperimentsAsync(run, sweep.Select((p, i) => (p, string.Join(' ', commands[i]))).ToList(), now, ct).ConfigureAwait(false);
        });
        ReportEarlierFolders(workRoot);
        // A folder no run used before: a script that resumes from ./checkpoints finds only its own.
        var runFolder = WorkingFolders.CreateRunFolder(workRoot, run);
        var experiments = sweep.Select((p, i) => new
        {
            Experiment = GridNames.ExperimentName(i),
            WorkingDirectory = Path.Combine(runFolder, GridNames.ExperimentName(i)),
            Parameters = p,
            Command = commands[i],
        }).ToList();

        var planPath = Path.Combine(runFolder, WorkingFolders.PlanFile);
        File.WriteAllText(planPath, JsonSerializer.Serialize(new
        {
            Run = run,
            Store = store.Location,
            ThrottleLimit,
            ArtifactPath = (ArtifactPath ?? Array.Empty<string>()).Select(ResolvePath).ToArray(),
            KeepWorkingDirectory = KeepWorkingDirectory.IsPresent,
            Experiments = experiments,
        }));
        WriteVerbose($"The experiments of {run} work in '{runFolder}'.");
        if (Scheduler == GridScheduler.Slurm) Submit(catalog, run, sweep.Count, runFolder, planPath);
        else StartDetached(planPath, Path.Combine(runFolder, "supervisor.log"));

        if (!Wait)
        {
            WriteObject(catalog.Runs.GetRunAsync(run, CancelToken).GetAwaiter().GetResult());
            return;
        }
        GridRun current = null!;
        RunAndDrain(async (post, ct) =>
        {
            var nextCheck = DateTime.UtcNow.AddSeconds(5);
            while (true)
            {
                current = await catalog.Runs.GetRunAsync(run, ct).ConfigureAwait(false);
                if (current.Status.IsFinished()) break;
                // A task that ended before its agent started would leave -Wait waiting for ever.
                if (current.Scheduler != GridScheduler.Local && DateTime.UtcNow >= nextCheck)
                {
                    await ClusterRuns.EndStrandedAsync(catalog, ClusterRuns.QueuedOf(new[] { current }), post, ct).ConfigureAwait(false);
                    nextCheck = DateTime.UtcNow.AddSeconds(5);
                }
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }, () =>
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
            WriteError(new ErrorRecord(new InvalidOperationException(
                    $"{e.Id} {status}{how}{why}. What it printed: Get-GridLog {e.Id} -Stream StandardError (and Get-GridLog {e.Id} for its output)."),
                "ExperimentFailed", ErrorCategory.InvalidResult, e));
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

    /// <summary>
    /// Says (once per work root in a session) that releases before 0.4.2 left run folders there, which
    /// nothing uses again and nothing removed, and how to remove them.
    /// </summary>
    private void ReportEarlierFolders(string workRoot)
    {
        lock (ReportedRoots) { if (!ReportedRoots.Add(workRoot)) return; }
        List<string> earlier;
        try { earlier = WorkingFolders.EarlierLayoutFolders(workRoot); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; }
        if (earlier.Count == 0) return;
        WriteWarning($"'{workRoot}' holds {earlier.Count} run folder(s) that earlier releases left (such as '{Path.GetFileName(earlier[0])}'); no run uses them again. " +
            $"Remove-GridWorkingDirectory -WorkingRoot '{workRoot}' -WhatIf lists what it would remove: the folders of runs that have ended.");
    }

    private static readonly HashSet<string> ReportedRoots = new(StringComparer.Ordinal);

    /// <summary>-SchedulerArgument only with a scheduler that takes it, and never the options the module sets itself.</summary>
    private void CheckScheduler()
    {
        if (SchedulerArgument is not null && Scheduler == GridScheduler.Local)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-SchedulerArgument passes options to a cluster's scheduler: add -Scheduler Slurm, or leave -SchedulerArgument out to run on this machine."),
                "SchedulerArgumentNeedsScheduler", ErrorCategory.InvalidArgument, SchedulerArgument));
        }
        foreach (var a in SchedulerArgument ?? Array.Empty<string>())
        {
            if (Slurm.ReservedOption(a) is { } reserved)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-SchedulerArgument '{a}': {reserved} is set by Start-GridRun (one array task per experiment, -ThrottleLimit at once); nothing was started."),
                    "SchedulerArgumentReserved", ErrorCategory.InvalidArgument, a));
            }
        }
        if (Scheduler == GridScheduler.Slurm && !SlurmClient.Has("sbatch"))
        {
            ThrowTerminatingError(new ErrorRecord(new GridException(GridErrorKind.NotFound, "SchedulerNotFound",
                "Slurm's sbatch is not on PATH; nothing was started. Run Start-GridRun -Scheduler Slurm where Slurm's commands are (a login node of the cluster)."),
                "SchedulerNotFound", ErrorCategory.ObjectNotFound, "sbatch"));
        }
    }

    /// <summary>
    /// Hands the queued experiments to Slurm as one array job and records the job on the run. When
    /// sbatch refuses, the queued experiments are ended Stopped (so the run does not sit Queued) and
    /// the error is terminating.
    /// </summary>
    private void Submit(GridCatalog catalog, string run, int count, string runFolder, string planPath)
    {
        var pwsh = RunnerPwsh();
        var moduleFolder = Path.GetDirectoryName(typeof(StartGridRunCommand).Assembly.Location)!;
        var version = typeof(StartGridRunCommand).Assembly.GetName().Version?.ToString(3) ?? "";
        RunAndDrain(async (post, ct) =>
        {
            RunJob job;
            try
            {
                job = ClusterRuns.SubmitSlurm(run, count, ThrottleLimit, runFolder, planPath, SchedulerArgument ?? Array.Empty<string>(), pwsh, moduleFolder, version);
            }
            catch (GridException)
            {
                for (var i = 0; i < count; i++) await catalog.Claims.StopQueuedAsync(run, GridNames.ExperimentName(i), CancellationToken.None).ConfigureAwait(false);
                throw;
            }
            await catalog.Writer.SetRunJobAsync(run, job, ct).ConfigureAwait(false);
            post(new VerboseMessage($"Submitted {run} to Slurm as job {job.Id}{(job.Cluster is null ? "" : $" on cluster {job.Cluster}")}: {count} task(s), at most {ThrottleLimit} at once."));
        });
    }

    /// <summary>Each combination of the parameters' values, once, keys in name order.</summary>
    internal static List<Dictionary<string, string>> Expand(Hashtable? parameters)
    {
        var result = new List<Dictionary<string, string>> { new(StringComparer.Ordinal) };
        if (parameters is null) return result;
        foreach (var key in parameters.Keys.Cast<object>().Select(k => Convert.ToString(k, CultureInfo.InvariantCulture)!).OrderBy(k => k, StringComparer.Ordinal))
        {
            var raw = parameters[key];
            var values = raw is IEnumerable list and not string ? list.Cast<object>().Select(Text).ToList() : new List<string> { Text(raw) };
            result = result.SelectMany(r => values.Select(v => new Dictionary<string, string>(r, StringComparer.Ordinal) { [key] = v })).ToList();
        }
        return result;
    }

    private static string Text(object? o) => Convert.ToString(o is PSObject p ? p.BaseObject : o, CultureInfo.InvariantCulture) ?? "";

    private static Dictionary<string, string> ToText(Hashtable? parameters)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (parameters is null) return d;
        foreach (DictionaryEntry e in parameters)
        {
            d[Text(e.Key)] = e.Value is IEnumerable list and not string ? string.Join(", ", list.Cast<object>().Select(Text)) : Text(e.Value);
        }
        return d;
    }

    /// <summary>The argument list of one experiment, parameters passed as the product passed them.</summary>
    private string[] CommandFor(string? script, Dictionary<string, string> p)
    {
        if (script is null)
        {
            var line = Command;
            var templated = false;
            foreach (var (k, v) in p)
            {
                if (line.Contains("{" + k + "}", StringComparison.Ordinal)) { line = line.Replace("{" + k + "}", v, StringComparison.Ordinal); templated = true; }
            }
            if (!templated) line += string.Concat(p.Select(kv => $" --{kv.Key} {kv.Value}"));
            return OperatingSystem.IsWindows() ? new[] { "cmd.exe", "/c", line } : new[] { "/bin/sh", "-c", line };
        }
        var ext = Path.GetExtension(script).ToLowerInvariant();
        if (ext == ".ps1")
        {
            CheckScriptTakes(script, p.Keys);
            return RunnerPwsh().Concat(new[] { "-NoProfile", "-NonInteractive", "-File", script }).Concat(p.SelectMany(kv => new[] { "-" + kv.Key, kv.Value })).ToArray();
        }
        var head = ext == ".py" ? new[] { "python3", script } : new[] { script };
        return head.Concat(p.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })).ToArray();
    }

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
        ThrowTerminatingError(new ErrorRecord(new GridException(GridErrorKind.InvalidArgument, "UnknownScriptParameter",
                $"The script '{script}' has no parameter {list}: {takes}. Nothing was started. Add {(unknown.Count == 1 ? "it" : "them")} to the script's param block, or leave {(unknown.Count == 1 ? "it" : "them")} out of -Parameter."),
            "UnknownScriptParameter", ErrorCategory.InvalidArgument, unknown.ToArray()));
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

    /// <summary>pwsh where the experiments run: on a cluster's nodes $env:GRID_PWSH when set, else this PowerShell (the same path on every node).</summary>
    private string[] RunnerPwsh() =>
        Scheduler != GridScheduler.Local && Environment.GetEnvironmentVariable("GRID_PWSH") is { Length: > 0 } configured ? new[] { configured } : PwshCommand();

    /// <summary>This PowerShell's own executable (and its pwsh.dll when it runs under the dotnet host).</summary>
    internal static string[] PwshCommand()
    {
        var exe = Environment.ProcessPath ?? "pwsh";
        var home = Path.GetDirectoryName(typeof(PSObject).Assembly.Location)!;
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" ? new[] { exe, Path.Combine(home, "pwsh.dll") } : new[] { exe };
    }

    /// <summary>Starts the run's supervisor in a session of its own, with no handle on this one.</summary>
    private void StartDetached(string planPath, string log)
    {
        var supervisor = Path.Combine(Path.GetDirectoryName(typeof(StartGridRunCommand).Assembly.Location)!, "GridArtifacts.Supervisor.ps1");
        var argv = PwshCommand().Concat(new[] { "-NoProfile", "-NonInteractive", "-File", supervisor, planPath }).ToArray();
        if (OperatingSystem.IsWindows())
        {
            var psi = new ProcessStartInfo(argv[0]) { UseShellExecute = false, CreateNoWindow = true };
            foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
            Process.Start(psi)?.Dispose();
            return;
        }
        static string Q(string s) => "'" + s.Replace("'", "'\\''") + "'";
        var sh = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        sh.ArgumentList.Add("-c");
        sh.ArgumentList.Add($"setsid {string.Join(' ', argv.Select(Q))} > {Q(log)} 2>&1 < /dev/null &");
        using var p = Process.Start(sh)!;
        p.WaitForExit();
    }
}
