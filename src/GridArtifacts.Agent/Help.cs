using System.Reflection;
using GridArtifacts.Core;
using GridArtifacts.Model;

namespace GridArtifacts.Agent;

/// <summary>What grid-agent says of itself.</summary>
internal static class Help
{
    public static string Version =>
        typeof(Help).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    public const string Short = "Usage: grid-agent run [OPTION]... [--] COMMAND [ARG]...\nTry 'grid-agent --help' for more information.";

    public const string Main = """
        Usage: grid-agent COMMAND [OPTION]...
        The GridArtifacts capture agent: runs one experiment, stores every file it writes while it
        runs and once more when it ends, and records how it ended. It needs no PowerShell.

        Commands:
          run [OPTION]... [--] COMMAND [ARG]...
                           run COMMAND as one experiment (Invoke-GridExperiment's twin)
          plan PLAN [--index N]
                           run experiment N of a run's plan.json (Start-GridRun wrote it;
                           N is $SLURM_ARRAY_TASK_ID in a Slurm array task)
          sweep PLAN       run every experiment of a plan, ThrottleLimit at once
                           (what Start-GridRun starts for a run on this machine)
          help [COMMAND]   this text, or a command's
          version          the version

        Run 'grid-agent help run' for the options of run.
        """;

    public const string Run = """
        Usage: grid-agent run [OPTION]... [--] COMMAND [ARG]...
        Run COMMAND as experiment EXPERIMENT of run RUN and capture every file it creates or changes
        in its working folder (and in each --artifact-path folder): each goes to the store once it has
        settled, and every file again in a final sync when COMMAND ends. The experiment's status is
        written only after that. The first word that is not an option starts COMMAND.

          -r, --run=RUN              the run (created when new); a new name such as
                                     adorable-mouse-123 when not given
          -e, --experiment=NAME      the experiment (default exp0)
          -s, --store=LOCATION       a folder or s3://bucket/prefix; default $GRID_STORE, then the
                                     store Set-GridStore saved, then ~/.grid/store
          -C, --working-directory=DIR
                                     run COMMAND in DIR (default: the current folder)
              --remove-working-directory
                                     remove DIR at the end when every file in it reached the store
                                     (kept, with a warning saying why, otherwise)
          -a, --artifact-path=DIR    another folder whose new and changed files are artifacts
                                     (repeatable)
          -p, --param=NAME=VALUE     a parameter, recorded and passed to COMMAND as
                                     $GRID_PARAM_NAME (repeatable)
          -t, --tag=TAG              a tag on the experiment (repeatable)
              --queued               run only an experiment waiting as Queued (Start-GridRun or a
                                     scheduler queued it)
          -q, --quiet                no warnings and no summary line
          -h, --help                 this text

        Signals: SIGTERM and SIGINT stop the experiment, not the agent: COMMAND is sent SIGTERM, and
        the final sync, sealed manifest and status are done within $GRID_SIGNAL_GRACE seconds (the
        time until the scheduler's SIGKILL; 30 by default). SIGINT ends it Stopped; a SIGTERM ends it
        Stopped when Stop-GridRun asked for it, Failed otherwise (a time limit, scancel). An agent
        started with SIGINT ignored (a background job of a shell without job control) leaves it ignored.

        Environment: GRID_STORE, GRID_SIGNAL_GRACE; for S3, the AWS credential chain (AWS_PROFILE,
        AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, web identity, instance and container roles),
        AWS_REGION, and AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) for an S3-compatible server.
        Keys are never written to output, errors or logs.

        Exit status:
          COMMAND's own exit status, as the system reports it (128+N when signal N ended it)
          2    bad options
          125  grid-agent failed: COMMAND did not run (the store could not be read or written,
               credentials are missing, another agent holds the experiment, or it was stopped or
               removed while queued), or the store stayed away past the final sync's patience so
               its end could not be recorded; the message on stderr says which
          130, 143
               SIGINT or SIGTERM came before the experiment started: nothing ran
          127  COMMAND could not be started (not found, or not executable)
        """;

    public const string Plan = """
        Usage: grid-agent plan PLAN [--index N] [--quiet]
        Run experiment N of the run whose plan.json is PLAN (Start-GridRun writes it in the run's
        folder), as a queued experiment: in its own working folder, with its parameters, in the store
        the plan names. The folder goes after the final sync unless the plan keeps folders, and the
        run's folder goes once the last experiment of the run has ended.

          -i, --index=N   the experiment's number; default $SLURM_ARRAY_TASK_ID
          -q, --quiet     no warnings and no summary line
              --leave-run-folder
                          do not remove the run's folder (a supervisor that starts more
                          experiments of the plan removes it at its end)

        Exit status: as for 'grid-agent run' (see 'grid-agent help run').
        """;

    public const string Sweep = """
        Usage: grid-agent sweep PLAN
        Run every experiment of the plan PLAN, at most its ThrottleLimit at once, each as
        'grid-agent plan PLAN --index N --quiet' in a process of its own. SIGTERM and SIGINT are
        passed on to the experiments running (each stops as 'grid-agent run' does), no more are
        started, and those not started are ended Stopped. At the end the run's folder goes, as
        'grid-agent plan' says, unless the plan keeps folders or this process's output (its
        supervisor.log) holds something.

        Exit status: 0 when every experiment's command exited 0, 1 otherwise; 2: bad options;
        125: the plan could not be read.
        """;

    public static string For(string command) => command switch
    {
        "run" => Run,
        "plan" => Plan,
        "sweep" => Sweep,
        _ => throw new UsageException($"no command '{command}'"),
    };

    /// <summary>The line said when an experiment has ended: <c>r-exp0 Succeeded (exit 0): 3 files, 1.2 MB stored</c>.</summary>
    public static string Summary(GridExperiment e, int exitCode)
    {
        var sync = e.Sync;
        var stored = $"{e.ArtifactCount} file(s), {SizeText.Format(e.ArtifactBytes)} stored";
        var pending = sync is { FilesPending: > 0 } ? $"; {sync.FilesPending} file(s) did not reach the store" : "";
        var signal = e.Signal is null ? "" : $", {e.Signal}";
        return $"{e.Id} {e.Status} (exit {exitCode}{signal}): {stored}{pending}";
    }
}
