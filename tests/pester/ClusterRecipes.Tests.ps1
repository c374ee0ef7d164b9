# The cluster recipes in examples/ (a Kubernetes Indexed Job, an AWS Batch array job): the fields
# that matter, and then the container's own command, read from the manifest and run here as the
# pods would run it: /bin/sh (dash on Debian) with grid-agent on PATH, once per index, every index
# at once, each in a folder of its own holding the image's train.py (examples/hello.py), into a
# folder store. No cluster and no container image are involved.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    . (Join-Path $PSScriptRoot 'ClusterRecipes.Helpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Examples = Join-Path $PSScriptRoot '../../examples'
    $script:ClustersDoc = Get-Content -Raw (Join-Path $PSScriptRoot '../../docs/clusters.md')
    # A valid run name (docs/store-layout.md), which is not an experiment's id.
    $script:RunName = '^(?!.*-exp\d+$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'

    # The image has grid-agent alone on its PATH: here, the one the module under test stages. The
    # recipes need it, so a machine without one fails here rather than skipping (CI builds it).
    $script:AgentFolder = Join-Path $ModulePath 'agent/linux-x64'
    $platform = "$([Runtime.InteropServices.RuntimeInformation]::OSDescription) $([Runtime.InteropServices.RuntimeInformation]::OSArchitecture)"
    if (-not $IsLinux -or [Runtime.InteropServices.RuntimeInformation]::OSArchitecture -ne 'X64') {
        throw "The recipes run grid-agent, which is built for linux-x64 only; this machine is $platform, so their command cannot run here."
    }
    if (-not (Test-Path -LiteralPath (Join-Path $AgentFolder 'grid-agent') -PathType Leaf)) {
        throw "No grid-agent in '$AgentFolder': the recipes' command runs it. Build it with 'dotnet pwsh ./build.ps1 -Task Build' on linux-x64 (CI does), then run this file again."
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'examples/kubernetes-indexed-job.yaml' {
    BeforeAll {
        $script:Yaml = Get-Content -Raw (Join-Path $Examples 'kubernetes-indexed-job.yaml')
        $script:Pod = Read-PodScript (Get-YamlArgsScript $Yaml) 'JOB_COMPLETION_INDEX'
        $script:PodEnv = Get-YamlEnv $Yaml
        # command: is a flow sequence of double-quoted strings, which reads as JSON; args: is the script.
        $script:Command = @(Get-YamlScalar $Yaml 'command' | ConvertFrom-Json)
        $script:Argv = $Command + $Pod.Script
        $script:Store = Join-Path $TestDrive 'store-k8s'
        $script:Environment = @{} + $PodEnv
        $Environment['GRID_STORE'] = $Store
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
        $Command | Should -Be @('/bin/sh', '-c')
        # Kubernetes expands $(NAME) in command and args itself; the script leaves that syntax alone.
        $Pod.Script | Should -Not -Match '\$\('
    }

    It 'runs as one run of exp0..exp2 when every index starts at once, and a retried pod exits 125 and changes nothing' {
        $pods = Invoke-Pods $Argv 'JOB_COMPLETION_INDEX' (0..($Pod.Values.Count - 1)) $Environment 'k8s' | Wait-Pods
        Assert-Sweep $pods $Store $PodEnv['GRID_RUN_NAME'] $Pod.Values
        # A retry of index 1 (what backoffLimitPerIndex: 0 prevents) finds exp1 ended.
        Assert-RetryRefused $Argv 'JOB_COMPLETION_INDEX' 1 $Environment $Store $PodEnv['GRID_RUN_NAME'] 'k8s-retry'
    }

    It 'fails a pod whose index has no value before anything runs' {
        Assert-IndexOutOfRange $Argv 'JOB_COMPLETION_INDEX' $Pod.Values.Count $Environment 'k8s-range'
    }

    It 'ends a pod sent SIGTERM Failed with Signal SIGTERM, its files kept' {
        Assert-Sigterm $Argv 'JOB_COMPLETION_INDEX' 2 $Environment $Pod.Values 'k8s-term'
    }

    It 'ends it so as PID 1 of its own PID namespace too, as in a container (exec makes grid-agent that process)' {
        $why = Test-PidNamespace
        if ($why) { Set-ItResult -Skipped -Because $why; return }
        Assert-Sigterm $Argv 'JOB_COMPLETION_INDEX' 0 $Environment $Pod.Values 'k8s-pid1' -AsPid1
    }
}

Describe 'examples/aws-batch-array-job.json' {
    BeforeAll {
        $script:Definition = Get-Content -Raw (Join-Path $Examples 'aws-batch-array-job.json') | ConvertFrom-Json
        $script:Container = $Definition.containerProperties
        $script:Pod = Read-PodScript $Container.command[-1] 'AWS_BATCH_JOB_ARRAY_INDEX'
        $script:PodEnv = @{}
        foreach ($e in $Container.environment) { $PodEnv[$e.name] = $e.value }
        $script:Argv = @($Container.command)
        $script:Store = Join-Path $TestDrive 'store-batch'
        $script:Environment = @{} + $PodEnv
        $Environment['GRID_STORE'] = $Store
    }

    It 'is a container job without retries, with a time limit, a role for S3 and a grace within the 30 s stop timeout' {
        $Definition.type | Should -Be 'container'
        $Definition.retryStrategy.attempts | Should -Be 1
        $Definition.timeout.attemptDurationSeconds | Should -BeGreaterOrEqual 60
        $Container.jobRoleArn | Should -Match '^arn:aws:iam::\d{12}:role/'
        @($Container.command[0..1]) | Should -Be @('/bin/sh', '-c')
        $Container.command.Count | Should -Be 3
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

    It 'runs as one run of exp0..exp2 when every child starts at once, and a retried child exits 125 and changes nothing' {
        $pods = Invoke-Pods $Argv 'AWS_BATCH_JOB_ARRAY_INDEX' (0..($Pod.Values.Count - 1)) $Environment 'batch' | Wait-Pods
        Assert-Sweep $pods $Store $PodEnv['GRID_RUN_NAME'] $Pod.Values
        Assert-RetryRefused $Argv 'AWS_BATCH_JOB_ARRAY_INDEX' 0 $Environment $Store $PodEnv['GRID_RUN_NAME'] 'batch-retry'
    }

    It 'fails a child whose index has no value before anything runs' {
        Assert-IndexOutOfRange $Argv 'AWS_BATCH_JOB_ARRAY_INDEX' $Pod.Values.Count $Environment 'batch-range'
    }

    It 'ends a child sent SIGTERM Failed with Signal SIGTERM, its files kept' {
        Assert-Sigterm $Argv 'AWS_BATCH_JOB_ARRAY_INDEX' 1 $Environment $Pod.Values 'batch-term'
    }
}

Describe 'examples/Dockerfile.grid-agent' {
    BeforeAll {
        $script:Dockerfile = Get-Content -Raw (Join-Path $Examples 'Dockerfile.grid-agent')
        $script:Yaml = Get-Content -Raw (Join-Path $Examples 'kubernetes-indexed-job.yaml')
    }

    It 'puts the packaged grid-agent on PATH and train.py in the manifests'' working folder' {
        $Dockerfile | Should -Match '(?m)^(ADD|COPY) grid-agent-\$\{GRID_AGENT_VERSION\}-linux-x64\.tar\.gz /usr/local/bin/\s*$'
        $version = (Import-PowerShellDataFile (Join-Path $ModulePath 'GridArtifacts.psd1')).ModuleVersion
        $Dockerfile | Should -Match "(?m)^ARG GRID_AGENT_VERSION=$([regex]::Escape($version))\s*$" -Because 'the example names the tarball this version packages'
        $Dockerfile | Should -Match "(?m)^WORKDIR $([regex]::Escape((Get-YamlScalar $Yaml 'workingDir')))\s*$"
        $Dockerfile | Should -Match '(?m)^COPY train\.py \.\s*$'
        $Dockerfile | Should -Not -Match '(?im)^FROM .*alpine' -Because 'grid-agent needs glibc 2.34 or later'
        $Dockerfile | Should -Not -Match '(?m)^ENTRYPOINT' -Because 'the manifests'' command must be the container''s main process'
    }
}
