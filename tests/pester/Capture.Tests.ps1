# Capture as users meet it: Start-GridRun, Stop-GridRun, Invoke-GridExperiment, Get-GridLog.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $env:GRID_STORE = Join-Path $TestDrive 'store'
    $script:Work = Join-Path $TestDrive 'work'
    $script:Examples = Join-Path $PSScriptRoot '../../examples'

    function Wait-Run([string] $Name, [string[]] $Until, [int] $Seconds = 60) {
        $deadline = (Get-Date).AddSeconds($Seconds)
        while ((Get-Date) -lt $deadline) {
            $r = Get-GridRun $Name
            if ($r.Status -in $Until) { return $r }
            Start-Sleep -Milliseconds 200
        }
        throw "Run $Name did not reach $($Until -join '/') in $Seconds s (it is $($r.Status))."
    }

    function Read-Artifact($Artifact) {
        $dest = Join-Path $TestDrive ('read-' + [guid]::NewGuid())
        $saved = $Artifact | Save-GridArtifact -Destination $dest -PassThru
        Get-Content -Raw -LiteralPath $saved.LocalPath
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_STORE, Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Start-GridRun' {
    It 'runs a sweep: each parameter combination once, passed in and recorded' {
        $run = Start-GridRun -Command 'echo "lr={lr} batch={batch} env=$GRID_PARAM_LR" > params.txt' -Parameter @{ lr = 0.1, 0.01; batch = 32, 64 } -WorkingRoot $Work -Wait
        $run.Status | Should -Be 'Succeeded'
        $experiments = Get-GridExperiment $run.Name
        $experiments.Experiment | Should -Be @('exp0', 'exp1', 'exp2', 'exp3')
        $seen = foreach ($e in $experiments) {
            $text = (Read-Artifact (Get-GridArtifact $e.Id -Path params.txt)).Trim()
            $text | Should -Be "lr=$($e.Parameters['lr']) batch=$($e.Parameters['batch']) env=$($e.Parameters['lr'])"
            $text
        }
        @($seen | Sort-Object -Unique).Count | Should -Be 4
    }

    # The same sweep with the supervisor and agents of each kind: grid-agent (the module ships it for
    # this platform) and pwsh ($env:GRID_AGENT = 'pwsh', or a platform without the executable).
    It 'runs a sweep under <Agent>, says which, and removes every folder it made' -ForEach @(@{ Agent = 'grid-agent' }, @{ Agent = 'pwsh' }) {
        if ($Agent -eq 'grid-agent' -and -not ($IsLinux -and [Runtime.InteropServices.RuntimeInformation]::OSArchitecture -eq 'X64')) { Set-ItResult -Skipped -Because 'grid-agent is built for linux-x64 only'; return }
        if ($Agent -eq 'pwsh') { $env:GRID_AGENT = 'pwsh' }
        try { $run = Start-GridRun -Command 'echo "{n}" > n.txt' -Parameter @{ n = 1, 2, 3 } -WorkingRoot $Work -Verbose -Wait 4>&1 | Tee-Object -Variable said | Where-Object { $_ -is [GridArtifacts.Model.GridRun] } }
        finally { Remove-Item Env:GRID_AGENT -ErrorAction Ignore }
        $run.Status | Should -Be 'Succeeded'
        $verbose = ($said | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n"
        if ($Agent -eq 'pwsh') { $verbose | Should -Match 'The experiments run under pwsh' }
        else { $verbose | Should -Match ([regex]::Escape("The experiments run under $(Join-Path $ModulePath 'agent/linux-x64/grid-agent').")) }
        foreach ($e in Get-GridExperiment $run.Name) {
            (Read-Artifact (Get-GridArtifact $e.Id -Path n.txt)).Trim() | Should -Be $e.Parameters['n']
            $e.WorkingDirectory | Should -BeNullOrEmpty
        }
        # The last experiment removes the run's folder just after its final status.
        $deadline = (Get-Date).AddSeconds(15)
        while ((Get-RunFolder $Work $run.Name) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 100 }
        Get-RunFolder $Work $run.Name | Should -BeNullOrEmpty
    }

    It 'with -Wait, writes one error per experiment that did not succeed and still returns the run' {
        $run = Start-GridRun -Command 'echo "no data for {code}" >&2; exit {code}' -Parameter @{ code = 0, 3 } -WorkingRoot $Work -Wait -ErrorVariable err -ErrorAction SilentlyContinue
        $succeeded = $?
        $succeeded | Should -BeFalse
        $run.Status | Should -Be 'Failed'
        $err.Count | Should -Be 1
        $id = "$($run.Name)-exp1"
        $err[0].FullyQualifiedErrorId | Should -Be 'ExperimentFailed,GridArtifacts.Commands.StartGridRunCommand'
        $err[0].TargetObject.Id | Should -Be $id
        $err[0].Exception.Message | Should -BeLike "$id Failed with exit code 3*Get-GridLog $id -Stream StandardError*"
        # The next step it names shows why.
        Get-GridLog $id -Stream StandardError | Should -Be 'no data for 3'
    }

    It 'returns at once, queues beyond -ThrottleLimit, and finishes without the caller' {
        $run = Start-GridRun -Command 'sleep 2; echo done > done.txt' -Parameter @{ i = 1, 2 } -ThrottleLimit 1 -WorkingRoot $Work
        $run.Status | Should -BeIn @('Queued', 'Running')
        $deadline = (Get-Date).AddSeconds(30)
        do { $statuses = (Get-GridExperiment $run.Name).Status; Start-Sleep -Milliseconds 100 } until (($statuses -contains 'Running') -or (Get-Date) -gt $deadline)
        $statuses | Should -Contain 'Queued'
        (Wait-Run $run.Name 'Succeeded', 'Failed').Status | Should -Be 'Succeeded'
        (Get-GridArtifact $run.Name -Path done.txt).Count | Should -Be 2
    }

    It 'goes on after the session that started it closes' {
        $name = Invoke-ChildPwsh "Import-Module '$ModulePath'; (Start-GridRun -Command 'sleep 2; echo after > after.txt' -WorkingRoot '$Work').Name"
        $name | Should -Match '^[a-z]+-[a-z]+-\d+$'
        (Wait-Run $name 'Succeeded', 'Failed').Status | Should -Be 'Succeeded'
        (Get-GridArtifact $name -Path after.txt).Count | Should -Be 1
    }

    It 'runs hello.ps1 with -name value and keeps its output' {
        $run = Start-GridRun -FilePath (Join-Path $Examples 'hello.ps1') -Parameter @{ lr = 0.1; epochs = 2 } -WorkingRoot $Work -Wait
        $run.Status | Should -Be 'Succeeded'
        (Get-GridArtifact "$($run.Name)-exp0").Path | Should -Be @('checkpoints/epoch=1.ckpt', 'checkpoints/epoch=2.ckpt', 'logs/train.log', 'metrics.csv', 'plots/loss/curve.svg')
        Get-GridLog "$($run.Name)-exp0" | Should -Be @('epoch 1: loss 0.5', 'epoch 2: loss 0.25')
    }

    It 'runs hello.py with --name value' -Skip:(-not (Get-Command python3 -ErrorAction Ignore)) {
        $run = Start-GridRun -FilePath (Join-Path $Examples 'hello.py') -Parameter @{ lr = 0.1; epochs = 2 } -WorkingRoot $Work -Wait
        $run.Status | Should -Be 'Succeeded'
        (Get-GridArtifact "$($run.Name)-exp0" -Path 'checkpoints/*').Count | Should -Be 2
    }
}

Describe 'Stop-GridRun' {
    It 'stops a running experiment after syncing what it wrote' {
        $run = Start-GridRun -Command 'echo begun > begun.txt; sleep 120' -WorkingRoot $Work
        $null = Wait-Run $run.Name 'Running'
        $deadline = (Get-Date).AddSeconds(20)
        while (-not (Get-GridArtifact $run.Name -Path begun.txt -ErrorAction Ignore) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        Stop-GridRun $run.Name -Confirm:$false
        (Wait-Run $run.Name 'Stopped', 'Failed', 'Succeeded' -Seconds 30).Status | Should -Be 'Stopped'
        (Get-GridArtifact $run.Name -Path begun.txt).Size | Should -BeGreaterThan 0
    }
}

Describe 'A killed agent' {
    It 'reads as Lost once its heartbeat is stale' -Skip:$IsWindows {
        $run = Start-GridRun -Command 'sleep 60' -WorkingRoot $Work
        $null = Wait-Run $run.Name 'Running'
        $plan = Join-Path (Get-RunFolder $Work $run.Name) plan.json
        # The agent (the run's detached pwsh) dies without a word; its script is left behind and ended here too.
        $agents = @(Get-Process | Where-Object { $_.CommandLine -like "*$plan*" })
        $agents.Count | Should -BeGreaterThan 0
        $agents | ForEach-Object { & kill -9 $_.Id }
        # Only this run's script: the agent gives it GRID_RUN=<run> (any other 'sleep 60' on the machine is not ours).
        $marker = "GRID_RUN=$($run.Name)"
        $scripts = @(Get-ChildItem /proc -Directory | Where-Object Name -Match '^\d+$' | Where-Object {
                try { [IO.File]::ReadAllText("$($_.FullName)/environ").Split([char]0) -contains $marker } catch { $false } })
        $scripts.Count | Should -BeGreaterThan 0
        $scripts | ForEach-Object { & kill -9 $_.Name }
        Start-Sleep -Seconds 3
        $status = Invoke-ChildPwsh "Import-Module '$ModulePath'; (Get-GridRun $($run.Name)).Status.ToString()" @{ GRID_LOST_AFTER_SECONDS = '2' }
        $status | Should -Be 'Lost'
        (Get-GridRun $run.Name).Status | Should -Be 'Running' # two minutes have not passed for this session's threshold
    }
}

Describe 'Invoke-GridExperiment' {
    It 'passes the exit code through and captures what the command wrote' {
        $here = Join-Path $TestDrive 'invoke'
        New-Item -ItemType Directory -Path $here | Out-Null
        Push-Location $here
        try {
            $exp = Invoke-GridExperiment -Run 'scheduled-job' -Experiment exp3 -- bash -c 'mkdir -p out; echo result > out/r.txt; exit 4'
        }
        finally { Pop-Location }
        $LASTEXITCODE | Should -Be 4
        $exp.Id | Should -Be 'scheduled-job-exp3'
        $exp.Status | Should -Be 'Failed'
        $exp.ExitCode | Should -Be 4
        (Read-Artifact (Get-GridArtifact scheduled-job-exp3 -Path out/r.txt)).Trim() | Should -Be 'result'
        # The user's own folder is never removed, and the record says where the command ran.
        Join-Path $here out/r.txt | Should -Exist
        $exp.WorkingDirectory | Should -Be $here
    }

    It '-RemoveWorkingDirectory needs -WorkingDirectory: the current location is never removed' {
        { Invoke-GridExperiment -Run refused-remove -RemoveWorkingDirectory -- true } | Should -Throw -ErrorId 'RemoveNeedsWorkingDirectory*'
        Get-GridRun refused-remove -ErrorAction Ignore | Should -BeNullOrEmpty
    }
}

Describe 'Working folders' {
    BeforeAll {
        $script:Root = Join-Path $TestDrive 'folders'
        $script:StoreA = Join-Path $TestDrive 'store-a'
        $script:StoreB = Join-Path $TestDrive 'store-b'
        # What the script finds in its folder when it starts, and a checkpoint of its own (as Lightning writes them).
        $script:Look = 'find . -mindepth 1 ! -name seen.txt > seen.txt; mkdir -p checkpoints; echo {tag} > checkpoints/last.ckpt'
        # Until at most $Count run folders of lightning-sweep are left, a minute at most.
        function Wait-RunFolders([int] $Count) {
            $deadline = (Get-Date).AddSeconds(60)
            while (@(Get-RunFolder $Root lightning-sweep).Count -gt $Count -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 250 }
        }
        function Get-Seen([string] $Id, [string] $Store) {
            $saved = Get-GridArtifact $Id -Path seen.txt -Store $Store | Save-GridArtifact -Destination (Join-Path $TestDrive "seen-$([guid]::NewGuid())") -PassThru
            @(Get-Content -LiteralPath $saved.LocalPath)
        }
        # A run folder as releases before 0.4.2 left it: <root>/<run>, never removed.
        $old = Join-Path $Root 'lightning-sweep'
        New-Item -ItemType Directory -Force -Path "$old/exp0/checkpoints", "$old/exp0/lightning_logs/version_0" | Out-Null
        Set-Content "$old/exp0/checkpoints/last.ckpt" 'an earlier run'
        Set-Content "$old/exp0/lightning_logs/version_0/metrics.csv" "epoch,loss`n0,1"
        Set-Content "$old/plan.json" (@{ Run = 'lightning-sweep'; Store = (Join-Path $TestDrive 'store-old'); Experiments = @() } | ConvertTo-Json)
    }

    It 'starts every run in a new, empty folder: beside an earlier release''s, in another store, and after a removal' {
        $first = Start-GridRun -Name lightning-sweep -Command $Look.Replace('{tag}', 'first') -Store $StoreA -WorkingRoot $Root -KeepWorkingDirectory -Wait -WarningVariable warned
        $first.Status | Should -Be Succeeded
        Get-Seen lightning-sweep-exp0 $StoreA | Should -BeNullOrEmpty
        # The earlier release's folder is said once, with how to remove it.
        ($warned -join "`n") | Should -Match "holds 1 run folder\(s\) that earlier releases left.*Remove-GridWorkingDirectory"
        $kept = (Get-GridExperiment lightning-sweep-exp0 -Store $StoreA).WorkingDirectory
        Join-Path $kept checkpoints/last.ckpt | Should -Exist

        # The same name in another store, while the first one's folder is kept: nothing of it is seen.
        $second = Start-GridRun -Name lightning-sweep -Command $Look.Replace('{tag}', 'second') -Store $StoreB -WorkingRoot $Root -Wait
        $second.Status | Should -Be Succeeded
        Get-Seen lightning-sweep-exp0 $StoreB | Should -BeNullOrEmpty
        # Its run folder goes once its last experiment has ended (waited for, so the removal below
        # does not race the supervisor's last look at the run).
        Wait-RunFolders 1
        # After a removal, the name again.
        Remove-GridRun lightning-sweep -Store $StoreB -Confirm:$false
        $third = Start-GridRun -Name lightning-sweep -Command $Look.Replace('{tag}', 'third') -Store $StoreB -WorkingRoot $Root -Wait
        Get-Seen lightning-sweep-exp0 $StoreB | Should -BeNullOrEmpty
        # Once its last experiment has ended, a run's own folder (plan.json, log) goes too: only the kept one is left.
        Wait-RunFolders 1
        $left = @(Get-RunFolder $Root lightning-sweep | Where-Object { $_ -ne (Split-Path -Parent $kept) })
        # What is in a folder that stayed, and its log: a log with something in it keeps the folder by design.
        $why = $left | ForEach-Object { Get-ChildItem -LiteralPath $_ -Recurse -Force | ForEach-Object { "$($_.FullName) ($($_.Length) B)" }; Get-Content -Raw -LiteralPath (Join-Path $_ supervisor.log) -ErrorAction Ignore }
        $left | Should -BeNullOrEmpty -Because ($why -join "`n")
        # The kept folder and the earlier release's are untouched.
        Get-Content (Join-Path $kept checkpoints/last.ckpt) | Should -Be 'first'
        Get-Content (Join-Path $Root lightning-sweep/exp0/checkpoints/last.ckpt) | Should -Be 'an earlier run'
    }

    It 'removes a folder once every file in it is stored, never through a link, and keeps one whose files did not all go, saying where' -Skip:$IsWindows {
        $outside = Join-Path $TestDrive 'outside'
        New-Item -ItemType Directory -Force -Path $outside | Out-Null
        Set-Content (Join-Path $outside 'best.ckpt') 'the best checkpoint'
        $before = (Get-FileHash (Join-Path $outside 'best.ckpt')).Hash
        # exp0 stores everything (its link leads into a captured folder, so it arrives as its target); exp1 leaves a FIFO, which is never stored.
        $command = "echo {k} > out.txt; ln -s '$outside/best.ckpt' last.ckpt; if [ {k} = fifo ]; then mkfifo pipe; ln -s '$outside' outside-folder; fi"
        $run = Start-GridRun -Name folder-ends -Command $command -Parameter @{ k = 'stored', 'fifo' } -ArtifactPath $outside -Store $StoreA -WorkingRoot $Root -Wait -WarningVariable warned
        $e = Get-GridExperiment folder-ends -Store $StoreA
        $e.Status | Should -Be @('Succeeded', 'Succeeded')
        $e[0].WorkingDirectory | Should -BeNullOrEmpty
        $e[1].WorkingDirectory | Should -Be (Join-Path (Get-RunFolder $Root folder-ends) exp1)
        Join-Path (Get-RunFolder $Root folder-ends) exp0 | Should -Not -Exist
        Join-Path $e[1].WorkingDirectory pipe | Should -Exist
        ($warned -join "`n") | Should -Match ([regex]::Escape("Kept the working folder of folder-ends-exp1, '$($e[1].WorkingDirectory)'"))
        # The link's target is untouched, and what was stored is byte-exact.
        (Get-FileHash (Join-Path $outside 'best.ckpt')).Hash | Should -Be $before
        $saved = Get-GridArtifact folder-ends-exp0 -Path last.ckpt -Store $StoreA | Save-GridArtifact -Destination (Join-Path $TestDrive 'ends') -PassThru
        (Get-FileHash $saved.LocalPath).Hash | Should -Be $before
    }

    It 'Remove-GridWorkingDirectory removes the folders of ended runs; a running one stays, and one with unstored files needs -Force' -Skip:$IsWindows {
        $busy = Start-GridRun -Name still-going -Command 'echo x > x.txt; sleep 60' -WorkingRoot $Root
        $null = Wait-Run still-going 'Running'
        $before = @(Get-ChildItem -LiteralPath $Root -Directory).Name | Sort-Object
        Remove-GridWorkingDirectory -WorkingRoot $Root -WhatIf
        @(Get-ChildItem -LiteralPath $Root -Directory).Name | Sort-Object | Should -Be $before

        Remove-GridWorkingDirectory -WorkingRoot $Root -Confirm:$false -WarningVariable warned
        $left = @(Get-ChildItem -LiteralPath $Root -Directory).Name | Sort-Object
        # Gone: the folder kept by -KeepWorkingDirectory. Left: the earlier release's, whose store holds no runs at all (it needs -Force).
        $left | Where-Object { $_ -like 'lightning-sweep.*' } | Should -BeNullOrEmpty
        $left | Should -Contain 'lightning-sweep'
        ($warned -join "`n") | Should -Match 'holds no runs at all.*-Force'
        # Left: the running one, and the one holding a FIFO, each with a warning that says why.
        $left | Where-Object { $_ -like 'still-going.*' } | Should -HaveCount 1
        $left | Where-Object { $_ -like 'folder-ends.*' } | Should -HaveCount 1
        ($warned -join "`n") | Should -Match 'still-going-exp0 is Running'
        ($warned -join "`n") | Should -Match 'not every file of folder-ends-exp1 is in the store.*-Force'

        Remove-GridWorkingDirectory folder-*, lightning-sweep -WorkingRoot $Root -Force -Confirm:$false
        @(Get-ChildItem -LiteralPath $Root -Directory).Name | Should -Be @($left | Where-Object { $_ -like 'still-going.*' })
        # The kept folder held a link to a folder outside: removed as a link, its target untouched.
        Join-Path $TestDrive 'outside/best.ckpt' | Should -Exist
        Stop-GridRun still-going -Confirm:$false
    }
}
