# The cluster recipes in examples/ (a Kubernetes Indexed Job, an AWS Batch array job): the fields
# that matter, and then the container's own command, read from the manifest and run here as the
# pods would run it: once per index, every index at once, each in a folder of its own holding the
# image's train.py (examples/hello.py), into a folder store. No cluster is involved.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Examples = Join-Path $PSScriptRoot '../../examples'
    $script:ClustersDoc = Get-Content -Raw (Join-Path $PSScriptRoot '../../docs/clusters.md')
    # The image has the module on its PSModulePath, so the command imports it by name.
    $script:ModulesPath = (Split-Path $ModulePath) + [IO.Path]::PathSeparator + $env:PSModulePath
    # A valid run name (docs/store-layout.md), which is not an experiment's id.
    $script:RunName = '^(?!.*-exp\d+$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'

    # One scalar of the manifest, by key; the manifest must have it once.
    function Get-YamlScalar([string] $Yaml, [string] $Key) {
        $found = [regex]::Matches($Yaml, "(?m)^[ \t]*$([regex]::Escape($Key)):[ \t]*(?<v>[^#\r\n]*?)[ \t]*(#.*)?\r?$")
        $found.Count | Should -Be 1 -Because "the manifest has '$($Key):' once"
        $found[0].Groups['v'].Value.Trim('"', "'")
    }

    # The env entries with a literal value (`- name: X` then `value: Y`), as a hashtable.
    function Get-YamlEnv([string] $Yaml) {
        $env = @{}
        foreach ($m in [regex]::Matches($Yaml, "(?m)^[ \t]*- name:[ \t]*(?<n>\S+)[ \t]*(#.*)?\r?\n[ \t]*value:[ \t]*(?<v>[^#\r\n]*?)[ \t]*(#.*)?\r?$")) {
            $env[$m.Groups['n'].Value] = $m.Groups['v'].Value.Trim('"', "'")
        }
        $env
    }

    # The literal block scalar (`- |`) under the container's `args:`: the PowerShell it runs.
    function Get-YamlArgsScript([string] $Yaml) {
        $lines = $Yaml -split '\r?\n'
        $at = @(for ($n = 0; $n -lt $lines.Count; $n++) { if ($lines[$n] -match '^\s*args:\s*$') { $n } })
        $at.Count | Should -Be 1 -Because 'the manifest has one args: list'
        $lines[$at[0] + 1] | Should -Match '^\s*- \|\s*$' -Because 'args: holds the script as one literal block (- |)'
        $dash = $lines[$at[0] + 1].IndexOf('-')
        $body = [Collections.Generic.List[string]]::new()
        for ($n = $at[0] + 2; $n -lt $lines.Count; $n++) {
            $line = $lines[$n]
            if ($line.Trim() -and ($line.Length - $line.TrimStart().Length) -le $dash) { break }
            $body.Add($line)
        }
        while ($body.Count -and -not $body[$body.Count - 1].Trim()) { $body.RemoveAt($body.Count - 1) }
        $indent = ($body | Where-Object { $_.Trim() } | Select-Object -First 1) -replace '^(\s*).*$', '$1'
        ($body | ForEach-Object { if ($_.StartsWith($indent)) { $_.Substring($indent.Length) } else { $_.Trim() } }) -join "`n"
    }

    # What the pod's script does with its index: the list it picks from, read from its syntax tree,
    # and the Invoke-GridExperiment command it runs.
    function Read-PodScript([string] $Script, [string] $IndexVariable) {
        $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseInput($Script, [ref] $null, [ref] $errors)
        $errors | Should -BeNullOrEmpty
        $ast.Extent.Text | Should -Match ([regex]::Escape("`$i = [int]`$env:$IndexVariable"))
        $ast.Extent.Text | Should -Match "^\`$ErrorActionPreference = 'Stop'" -Because 'a refused experiment must fail the pod, not exit 0'
        $pick = @($ast.FindAll({ param($a) $a -is [System.Management.Automation.Language.IndexExpressionAst] -and
                    $a.Target -is [System.Management.Automation.Language.ArrayExpressionAst] -and "$($a.Index)" -eq '$i' }, $true))
        $pick.Count | Should -Be 1 -Because 'the script picks its value with @(...)[$i]'
        $invoke = @($ast.FindAll({ param($a) $a -is [System.Management.Automation.Language.CommandAst] -and $a.GetCommandName() -eq 'Invoke-GridExperiment' }, $true))
        $invoke.Count | Should -Be 1
        $parameters = @($invoke[0].CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] } | ForEach-Object ParameterName)
        $parameters | Should -Not -Contain 'Queued' -Because 'nothing queues the experiments beforehand: the first pod creates the run'
        foreach ($p in 'Run', 'Experiment', 'Store', 'Parameter') { $parameters | Should -Contain $p }
        [pscustomobject]@{ Values = @($pick[0].Target.SafeGetValue()) }
    }

    # Runs the container's command (argv, pwsh first) once per index, all at once, each process in
    # a folder of its own holding train.py, and waits for them all.
    function Invoke-Pods([string[]] $Argv, [string] $IndexVariable, [int[]] $Indexes, [hashtable] $Environment, [string] $Name) {
        $Argv[0] | Should -Be 'pwsh'
        $exe = [Environment]::ProcessPath
        $pods = foreach ($i in $Indexes) {
            $folder = Join-Path $TestDrive "$Name/pod$i"
            New-Item -ItemType Directory -Force -Path $folder | Out-Null
            Copy-Item (Join-Path $Examples 'hello.py') (Join-Path $folder 'train.py')
            $psi = [Diagnostics.ProcessStartInfo]::new($exe)
            if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
            foreach ($a in $Argv[1..($Argv.Count - 1)]) { $psi.ArgumentList.Add($a) }
            $psi.WorkingDirectory = $folder
            $psi.UseShellExecute = $false
            $psi.RedirectStandardOutput = $true
            $psi.RedirectStandardError = $true
            foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
            $psi.Environment[$IndexVariable] = "$i"
            $psi.Environment['PSModulePath'] = $ModulesPath
            $p = [Diagnostics.Process]::Start($psi)
            [pscustomobject]@{ Index = $i; Folder = $folder; Process = $p; Out = $p.StandardOutput.ReadToEndAsync(); Err = $p.StandardError.ReadToEndAsync() }
        }
        foreach ($pod in $pods) {
            if (-not $pod.Process.WaitForExit(90000)) { $pod.Process.Kill($true); throw "pod $($pod.Index) did not end in 90 s" }
            $pod.Process.WaitForExit()
            $pod | Add-Member ExitCode $pod.Process.ExitCode
            $pod | Add-Member Output ($pod.Out.Result + $pod.Err.Result)
            $pod.Process.Dispose()
        }
        $pods
    }

    # One run, exp0..exp(N-1), each Succeeded with its own value, and what each pod's train.py wrote
    # downloaded byte for byte.
    function Assert-Sweep($Pods, [string] $Store, [string] $Run, [object[]] $Values) {
        foreach ($pod in $Pods) { $pod.ExitCode | Should -Be 0 -Because "pod $($pod.Index) said: $($pod.Output)" }
        @(Get-GridRun -Store $Store).Name | Should -Be @($Run)
        $experiments = @(Get-GridExperiment $Run -Store $Store)
        $experiments.Experiment | Should -Be @(0..($Values.Count - 1) | ForEach-Object { "exp$_" })
        $dest = Join-Path $TestDrive "saved-$(Split-Path -Leaf $Store)"
        Save-GridArtifact $Run -Store $Store -Destination $dest
        foreach ($pod in $Pods) {
            $e = $experiments[$pod.Index]
            $value = [string]$Values[$pod.Index]
            $e.Status | Should -Be 'Succeeded'
            $e.ExitCode | Should -Be 0
            $e.Parameters['lr'] | Should -Be $value
            Get-Content -Raw (Join-Path $pod.Folder 'logs/train.log') | Should -Match "lr=$([regex]::Escape($value)) "
            # train.py was in the folder before the command started: it is not an artifact.
            $local = @(Get-ChildItem -LiteralPath $pod.Folder -Recurse -File | Where-Object Name -ne 'train.py' |
                ForEach-Object { [IO.Path]::GetRelativePath($pod.Folder, $_.FullName).Replace('\', '/') } | Sort-Object)
            $local.Count | Should -BeGreaterThan 3
            (Get-GridArtifact $e.Id -Store $Store).Path | Sort-Object | Should -Be $local
            $saved = Join-Path $dest "$Run/$($e.Experiment)"
            foreach ($path in $local) {
                (Get-FileHash -Algorithm SHA256 (Join-Path $saved $path)).Hash |
                    Should -Be (Get-FileHash -Algorithm SHA256 (Join-Path $pod.Folder $path)).Hash -Because $path
            }
        }
    }

    # The pods' module is the one under test, not a copy installed for this user.
    $saved = $env:PSModulePath
    try { $env:PSModulePath = $ModulesPath; $base = (Get-Module -ListAvailable GridArtifacts | Select-Object -First 1).ModuleBase }
    finally { $env:PSModulePath = $saved }
    if ("$base".TrimEnd('/') -ne (Resolve-Path $ModulePath).Path.TrimEnd('/')) { throw "pwsh would load GridArtifacts from '$base', not from '$ModulePath' under test." }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'examples/kubernetes-indexed-job.yaml' {
    BeforeAll {
        $script:Yaml = Get-Content -Raw (Join-Path $Examples 'kubernetes-indexed-job.yaml')
        $script:Script = Get-YamlArgsScript $Yaml
        $script:Pod = Read-PodScript $Script 'JOB_COMPLETION_INDEX'
        $script:PodEnv = Get-YamlEnv $Yaml
        # command: is a flow sequence of double-quoted strings, which reads as JSON.
        $script:Command = @(Get-YamlScalar $Yaml 'command' | ConvertFrom-Json)
    }

    It 'is an Indexed Job of one index per value, without retries, with a grace period that covers GRID_SIGNAL_GRACE' {
        Get-YamlScalar $Yaml 'apiVersion' | Should -Be 'batch/v1'
        Get-YamlScalar $Yaml 'kind' | Should -Be 'Job'
        Get-YamlScalar $Yaml 'completionMode' | Should -Be 'Indexed'
        $completions = [int](Get-YamlScalar $Yaml 'completions')
        $completions | Should -Be $Pod.Values.Count
        [int](Get-YamlScalar $Yaml 'parallelism') | Should -BeIn (1..$completions)
        Get-YamlScalar $Yaml 'backoffLimitPerIndex' | Should -Be '0'
        Get-YamlScalar $Yaml 'restartPolicy' | Should -Be 'Never'
        [int](Get-YamlScalar $Yaml 'terminationGracePeriodSeconds') | Should -BeGreaterOrEqual ([int]$PodEnv['GRID_SIGNAL_GRACE'])
        $PodEnv['GRID_RUN_NAME'] | Should -Match $RunName
        $PodEnv['GRID_STORE'] | Should -Match '^s3://'
        $Yaml | Should -Match '(?m)^\s*- secretRef:\s*$' -Because 'the store''s credentials come from a Secret'
        $Command | Should -Be @('pwsh', '-NoProfile', '-NonInteractive', '-Command')
    }

    It 'runs as one run of exp0..exp2 when every index starts at once, and a retried pod is refused' {
        $argv = $Command + $Script
        $store = Join-Path $TestDrive 'store-k8s'
        $environment = @{} + $PodEnv
        $environment['GRID_STORE'] = $store
        $pods = Invoke-Pods $argv 'JOB_COMPLETION_INDEX' (0..($Pod.Values.Count - 1)) $environment 'k8s'
        Assert-Sweep $pods $store $PodEnv['GRID_RUN_NAME'] $Pod.Values

        # A retry of index 1 (what backoffLimitPerIndex: 0 prevents) finds exp1 ended: it fails and changes nothing.
        $before = Get-GridExperiment "$($PodEnv['GRID_RUN_NAME'])-exp1" -Store $store
        $retry = Invoke-Pods $argv 'JOB_COMPLETION_INDEX' 1 $environment 'k8s-retry'
        $retry.ExitCode | Should -Not -Be 0
        $retry.Output | Should -Match 'has ended \(Succeeded\)'
        $after = Get-GridExperiment "$($PodEnv['GRID_RUN_NAME'])-exp1" -Store $store
        $after.Finished | Should -Be $before.Finished
        $after.ArtifactCount | Should -Be $before.ArtifactCount
    }
}

Describe 'examples/aws-batch-array-job.json' {
    BeforeAll {
        $script:Definition = Get-Content -Raw (Join-Path $Examples 'aws-batch-array-job.json') | ConvertFrom-Json
        $script:Container = $Definition.containerProperties
        $script:Pod = Read-PodScript $Container.command[-1] 'AWS_BATCH_JOB_ARRAY_INDEX'
        $script:PodEnv = @{}
        foreach ($e in $Container.environment) { $PodEnv[$e.name] = $e.value }
    }

    It 'is a container job without retries, with a time limit, a role for S3 and a grace within the 30 s stop timeout' {
        $Definition.type | Should -Be 'container'
        $Definition.retryStrategy.attempts | Should -Be 1
        $Definition.timeout.attemptDurationSeconds | Should -BeGreaterOrEqual 60
        $Container.jobRoleArn | Should -Match '^arn:aws:iam::\d{12}:role/'
        @($Container.command[0..3]) | Should -Be @('pwsh', '-NoProfile', '-NonInteractive', '-Command')
        $Container.command.Count | Should -Be 5
        [int]$PodEnv['GRID_SIGNAL_GRACE'] | Should -Be 30 -Because 'the ECS agent stops a container with SIGTERM, then SIGKILL 30 s later (ECS_CONTAINER_STOP_TIMEOUT)'
        $PodEnv['GRID_RUN_NAME'] | Should -Match $RunName
        $PodEnv['GRID_STORE'] | Should -Match '^s3://'
    }

    It 'is submitted in docs/clusters.md as an array of one child per value' {
        $submit = [regex]::Matches($ClustersDoc, '(?m)^aws batch submit-job .*--job-definition (?<def>\S+).*--array-properties size=(?<n>\d+)')
        $submit.Count | Should -Be 1
        $submit[0].Groups['def'].Value | Should -Be $Definition.jobDefinitionName
        [int]$submit[0].Groups['n'].Value | Should -Be $Pod.Values.Count
    }

    It 'runs as one run of exp0..exp2 when every child starts at once' {
        $store = Join-Path $TestDrive 'store-batch'
        $environment = @{} + $PodEnv
        $environment['GRID_STORE'] = $store
        $pods = Invoke-Pods @($Container.command) 'AWS_BATCH_JOB_ARRAY_INDEX' (0..($Pod.Values.Count - 1)) $environment 'batch'
        Assert-Sweep $pods $store $PodEnv['GRID_RUN_NAME'] $Pod.Values
    }
}
