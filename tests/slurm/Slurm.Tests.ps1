# Start-GridRun -Scheduler Slurm on a real one-node Slurm (tests/slurm/Start-Slurm.sh, which
# build.ps1 -Task Test starts and exports SLURM_CONF for) with the S3 test server as the store.
# Kept out of tests/pester: build.ps1 runs this file in a pwsh of its own beside the other tests.
BeforeDiscovery {
    # Without a Slurm to talk to (not root, not Linux, GRID_TEST_SLURM=0), every test is skipped, and says why.
    $script:NoSlurm = -not $env:SLURM_CONF -or -not (Get-Command sbatch -ErrorAction Ignore)
}

BeforeAll {
    . (Join-Path $PSScriptRoot '../pester/TestHelpers.ps1')
    Import-GridTestModule | Out-Null
    Assert-S3Server
    $script:Work = Join-Path $TestDrive 'work'
    # The agents' grace after SIGTERM, as the generated slurm.conf sets it.
    $script:KillWait = if ($env:SLURM_CONF) { [int]((scontrol show config | Select-String '^KillWait\s*=\s*(\d+)').Matches[0].Groups[1].Value) } else { 0 }

    # A script that writes what Slurm told it and a file of random bytes, then waits.
    $script:Script = Join-Path $TestDrive 'train.ps1'
    Set-Content -LiteralPath $Script -Value @'
param([int] $Seed = 0, [int] $Bytes = 1048576, [int] $Sleep = 0)
"$env:SLURM_JOB_ID $env:SLURM_ARRAY_JOB_ID $env:SLURM_ARRAY_TASK_ID $env:GRID_EXPERIMENT" | Set-Content -LiteralPath slurm.txt
$data = [byte[]]::new($Bytes)
[Random]::new($Seed).NextBytes($data)
[IO.File]::WriteAllBytes((Join-Path $PWD 'model.bin'), $data)
Start-Sleep -Seconds $Sleep
'@

    function Wait-Until([scriptblock] $Condition, [int] $Seconds, [string] $What) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "Not within $Seconds s: $What" }
            Start-Sleep -Milliseconds 250
        }
    }

    # What squeue still shows of a job in its default states (pending, running, completing).
    function Get-Queued([string] $JobId) { @(squeue -h -j $JobId -o '%i %T' 2>$null) }

    # Every artifact of a run downloaded and compared, by SHA-256, with the file its script wrote:
    # in its kept folder (-KeepWorkingDirectory), else model.bin as its seed makes it again.
    function Assert-ArtifactsExact([string] $Store, [string] $Run, [string[]] $Paths = @('model.bin', 'slurm.txt')) {
        $dest = Join-Path $TestDrive "saved-$Run"
        $saved = @(Save-GridArtifact -Run $Run -Store $Store -Destination $dest -PassThru)
        $saved.Count | Should -BeGreaterThan 0
        $folder = Get-RunFolder $Work $Run
        foreach ($s in $saved) {
            $s.Artifact.Path | Should -BeIn $Paths
            $hash = (Get-FileHash -LiteralPath $s.LocalPath -Algorithm SHA256).Hash
            $original = if ($folder) { Join-Path $folder "$($s.Artifact.Experiment)/$($s.Artifact.Path)" }
            if ($original -and (Test-Path -LiteralPath $original)) { $hash | Should -Be (Get-FileHash -LiteralPath $original -Algorithm SHA256).Hash }
            elseif ($s.Artifact.Path -eq 'model.bin') {
                $data = [byte[]]::new(1048576)
                [Random]::new([int](Get-GridExperiment $s.Artifact.ExperimentId -Store $Store).Parameters['Seed']).NextBytes($data)
                $hash | Should -Be ([Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($data)))
            }
            else { (Get-Content -LiteralPath $s.LocalPath) | Should -Match "^\d+ \d+ \d+ $($s.Artifact.Experiment)$" }
        }
        $saved
    }
}

Describe 'Start-GridRun -Scheduler Slurm' -Tag Slurm -Skip:$NoSlurm {
    # With grid-agent on the node (the module's own), and with pwsh only ($env:GRID_AGENT = 'pwsh').
    It 'runs a 3-experiment sweep as one array job: Succeeded, byte-exact, each script sees its SLURM_JOB_ID (the agent: <Agent>)' -ForEach @(@{ Agent = 'grid-agent' }, @{ Agent = 'pwsh' }) {
        $store = New-TestS3Store "slurm-sweep-$Agent"
        if ($Agent -eq 'pwsh') { $env:GRID_AGENT = 'pwsh' }
        try { $run = Start-GridRun -FilePath $Script -Parameter @{ Seed = 1, 2, 3 } -Store $store -WorkingRoot $Work -Scheduler Slurm -ThrottleLimit 3 -Wait -KeepWorkingDirectory }
        finally { Remove-Item Env:GRID_AGENT -ErrorAction Ignore }
        $run.Status | Should -Be Succeeded
        $run.Scheduler | Should -Be Slurm
        $run.JobId | Should -Match '^\d+$'
        $run.Cluster | Should -Be ((scontrol show config | Select-String '^ClusterName\s*=\s*(\S+)').Matches[0].Groups[1].Value)
        # The listing shows the job too (from the run's keys, not its record).
        (Get-GridRun -Store $store).JobId | Should -Be $run.JobId
        $experiments = @(Get-GridExperiment $run.Name -Store $store)
        $experiments.Status | Should -Be @('Succeeded', 'Succeeded', 'Succeeded')
        $seen = foreach ($e in $experiments) {
            $job, $array, $task, $exp = (Get-Content -LiteralPath (Join-Path (Get-RunFolder $Work $run.Name) "$($e.Experiment)/slurm.txt")).Split(' ')
            $array | Should -Be $run.JobId
            $task | Should -Be $e.Index
            $exp | Should -Be $e.Experiment
            $job | Should -Match '^\d+$'
            $job
        }
        # Each task is a job of its own.
        @($seen | Sort-Object -Unique).Count | Should -Be 3
        $saved = Assert-ArtifactsExact $store $run.Name
        $saved.Count | Should -Be 6
        # The job script is beside the plan, and each task wrote its own output there.
        $e.WorkingDirectory | Should -Be (Join-Path (Get-RunFolder $Work $run.Name) $e.Experiment)
        Test-Path (Join-Path (Get-RunFolder $Work $run.Name) slurm.sh) | Should -BeTrue
        (Get-ChildItem (Join-Path (Get-RunFolder $Work $run.Name) slurm) -Filter '*.out').Name | Sort-Object | Should -Be @('0.out', '1.out', '2.out')
        # Which agent ran each task: grid-agent says how its experiment ended; under pwsh the job script has no executable to try.
        $jobScript = Get-Content -Raw (Join-Path (Get-RunFolder $Work $run.Name) slurm.sh)
        $taskOut = Get-Content -Raw (Join-Path (Get-RunFolder $Work $run.Name) slurm/1.out)
        if ($Agent -eq 'grid-agent') {
            $jobScript | Should -Match 'exec "\$agent" plan'
            $taskOut | Should -Match "grid-agent: $($run.Name)-exp1 Succeeded \(exit 0\)"
        }
        else {
            $jobScript | Should -Not -Match 'agent='
            "$taskOut" | Should -Not -Match 'grid-agent'
        }
    }

    It 'stops a %1 sweep midway: the running one through its agent, the pending ones by scancel, all Stopped, nothing left in squeue' {
        $store = New-TestS3Store 'slurm-stop'
        $run = Start-GridRun -FilePath $Script -Parameter @{ Seed = 1, 2, 3, 4; Sleep = 60 } -Store $store -WorkingRoot $Work -Scheduler Slurm -ThrottleLimit 1
        Wait-Until { (Get-GridExperiment "$($run.Name)-exp0" -Store $store).ArtifactCount -ge 2 } 60 'exp0 running with its files synced'
        @(Get-GridExperiment $run.Name -Store $store).Status | Should -Be @('Running', 'Queued', 'Queued', 'Queued')
        $stopped = @(Stop-GridRun $run.Name -Store $store -PassThru -Confirm:$false)
        $stopped.Count | Should -Be 4
        # The pending ones end at once; the running one once its agent has synced and sealed.
        @($stopped | Where-Object Experiment -NE exp0).Status | Should -Be @('Stopped', 'Stopped', 'Stopped')
        Wait-Until { (Get-GridRun $run.Name -Store $store).Status -eq 'Stopped' } 30 'the run Stopped'
        @(Get-GridExperiment $run.Name -Store $store).Status | Should -Be @('Stopped', 'Stopped', 'Stopped', 'Stopped')
        Wait-Until { (Get-Queued $run.JobId).Count -eq 0 } 15 "job $($run.JobId) gone from squeue"
        # Only exp0 ran, and what it wrote is whole.
        (Get-GridExperiment "$($run.Name)-exp0" -Store $store).Signal | Should -BeNullOrEmpty
        $saved = Assert-ArtifactsExact $store $run.Name
        $saved.Artifact.Experiment | Sort-Object -Unique | Should -Be 'exp0'
        @(Get-RunFolder $Work $run.Name | Where-Object { Test-Path (Join-Path $_ exp1) }) | Should -BeNullOrEmpty
    }

    It 'keeps the artifacts of a task Slurm ends with SIGTERM (scancel), within KillWait: Failed, Signal SIGTERM' {
        $store = New-TestS3Store 'slurm-term'
        $run = Start-GridRun -FilePath $Script -Parameter @{ Seed = 5; Sleep = 120 } -Store $store -WorkingRoot $Work -Scheduler Slurm
        Wait-Until { (Get-GridExperiment "$($run.Name)-exp0" -Store $store).ArtifactCount -ge 2 } 60 'exp0 running with its files synced'
        $watch = [Diagnostics.Stopwatch]::StartNew()
        scancel $run.JobId
        Wait-Until { (Get-GridExperiment "$($run.Name)-exp0" -Store $store).Status -notin 'Running', 'Syncing' } ($KillWait + 5) 'exp0 ended after SIGTERM'
        $watch.Elapsed.TotalSeconds | Should -BeLessThan $KillWait
        $e = Get-GridExperiment "$($run.Name)-exp0" -Store $store
        $e.Status | Should -Be Failed
        $e.Signal | Should -Be SIGTERM
        $e.Sync.FilesPending | Should -Be 0
        Assert-ArtifactsExact $store $run.Name | Out-Null
        # Every file is in the store: its folder is gone, and the record says so.
        $e.WorkingDirectory | Should -BeNullOrEmpty
        @(Get-RunFolder $Work $run.Name | Where-Object { Test-Path (Join-Path $_ exp0) }) | Should -BeNullOrEmpty
        Wait-Until { (Get-Queued $run.JobId).Count -eq 0 } 15 "job $($run.JobId) gone from squeue"
    }

    It 'keeps the artifacts of a task its time limit ends' {
        $store = New-TestS3Store 'slurm-limit'
        # Slurm looks at time limits about every 30 s: --time=0:01 ends the task after about 66 s.
        $run = Start-GridRun -FilePath $Script -Parameter @{ Seed = 6; Sleep = 600 } -Store $store -WorkingRoot $Work -Scheduler Slurm -SchedulerArgument '--time=0:01'
        Wait-Until { (Get-GridExperiment "$($run.Name)-exp0" -Store $store).Status -notin 'Queued', 'Running', 'Syncing' } 150 'exp0 ended by its time limit'
        $e = Get-GridExperiment "$($run.Name)-exp0" -Store $store
        $e.Status | Should -Be Failed
        $e.Signal | Should -Be SIGTERM
        # Slurm says why it ended, once the task has left COMPLETING.
        Wait-Until { (@(squeue -h -t all -j $run.JobId -o '%T') -join ' ') -match 'TIMEOUT' } 20 "job $($run.JobId) shown as TIMEOUT"
        Assert-ArtifactsExact $store $run.Name | Out-Null
    }

    It 'ends Failed, with the Slurm state as the reason, an experiment whose task could not start its agent' {
        $store = New-TestS3Store 'slurm-nopwsh'
        # Neither grid-agent (the task falls back to pwsh, and says so) nor pwsh runs on the node.
        $env:GRID_AGENT = '/nonexistent/grid-agent'
        $env:GRID_PWSH = '/nonexistent/pwsh'
        try { $run = Start-GridRun -FilePath $Script -Parameter @{ Seed = 7, 8 } -Store $store -WorkingRoot $Work -Scheduler Slurm }
        finally { Remove-Item Env:GRID_PWSH, Env:GRID_AGENT }
        Wait-Until { (Get-Queued $run.JobId).Count -eq 0 } 30 "job $($run.JobId) ended"
        $experiments = @(Get-GridExperiment $run.Name -Store $store -WarningVariable warned -WarningAction SilentlyContinue)
        $experiments.Status | Should -Be @('Failed', 'Failed')
        $experiments[0].Reason | Should -Match "Slurm task $($run.JobId)_0 ended FAILED \(exit 127\) before its agent started"
        $warned.Count | Should -Be 2
        # Said once: the next reader finds them ended.
        (Get-GridRun $run.Name -Store $store -WarningVariable again).Status | Should -Be Failed
        $again.Count | Should -Be 0
        $taskOut = Get-Content -Raw (Join-Path (Get-RunFolder $Work $run.Name) slurm/0.out)
        $taskOut | Should -Match 'nonexistent/grid-agent does not run on .*; this task runs under pwsh'
        $taskOut | Should -Match 'nonexistent/pwsh'
    }

    It 'Remove-GridRun -Force cancels the pending tasks and removes the run' {
        $store = New-TestS3Store 'slurm-remove'
        $run = Start-GridRun -FilePath $Script -Parameter @{ Seed = 1, 2, 3; Sleep = 60 } -Store $store -WorkingRoot $Work -Scheduler Slurm -ThrottleLimit 1
        Wait-Until { (Get-GridExperiment "$($run.Name)-exp0" -Store $store).Status -eq 'Running' } 60 'exp0 running'
        Remove-GridRun $run.Name -Store $store -Force -Confirm:$false
        { Get-GridRun $run.Name -Store $store -ErrorAction Stop } | Should -Throw -ErrorId 'RunNotFound*'
        Wait-Until { (Get-Queued $run.JobId).Count -eq 0 } 15 "job $($run.JobId) gone from squeue"
        @(Get-RunFolder $Work $run.Name | Where-Object { Test-Path (Join-Path $_ exp1) }) | Should -BeNullOrEmpty
    }

    It 'refuses a job sbatch refuses, and ends its experiments Stopped' {
        $store = New-TestS3Store 'slurm-refused'
        { Start-GridRun -FilePath $Script -Parameter @{ Seed = 1, 2 } -Name refused -Store $store -WorkingRoot $Work -Scheduler Slurm -SchedulerArgument '--partition=no-such-partition' } |
            Should -Throw -ErrorId 'SchedulerRefused*' -ExpectedMessage '*no-such-partition*'
        @(Get-GridExperiment refused -Store $store).Status | Should -Be @('Stopped', 'Stopped')
    }
}

Describe 'Start-GridRun -SchedulerArgument' -Tag Slurm {
    It 'is refused without -Scheduler Slurm, and for the options Start-GridRun sets itself; nothing is created' {
        $store = Join-Path $TestDrive 'refused-store'
        { Start-GridRun -FilePath $Script -Store $store -SchedulerArgument '--time=1:00' } | Should -Throw -ErrorId 'SchedulerArgumentNeedsScheduler*'
        { Start-GridRun -FilePath $Script -Store $store -Scheduler Slurm -SchedulerArgument '--array=0-9' } | Should -Throw -ErrorId 'SchedulerArgumentReserved*'
        Test-Path (Join-Path $store 'runs') | Should -BeFalse
    }
}
