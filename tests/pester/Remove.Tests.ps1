# Removal as users meet it: confirmed, exact, and the only way artifacts ever go.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $env:GRID_STORE = Join-Path $TestDrive 'store'

    function New-Run([string] $Name, [string] $Experiment = 'exp0') {
        $src = Join-Path $TestDrive "src/$Name/$Experiment"
        New-Item -ItemType Directory -Force -Path "$src/ckpt" | Out-Null
        $bytes = [byte[]]::new(20000); [Random]::new($Name.Length).NextBytes($bytes)
        [IO.File]::WriteAllBytes("$src/ckpt/model.pt", $bytes)
        Set-Content "$src/metrics.csv" "loss`n0.5"
        Import-GridArtifact -Path $src -Run $Name -Experiment $Experiment | Out-Null
    }
    function Get-Hashes { Get-GridArtifact * | ForEach-Object { "$($_.ExperimentId)/$($_.Path)=$($_.Sha256)" } }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_STORE, Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Remove-GridRun and Remove-GridExperiment' {
    BeforeEach {
        Remove-Item -Recurse -Force $env:GRID_STORE -ErrorAction Ignore
        New-Run 'keep-run'; New-Run 'keep-run' 'exp1'; New-Run 'gone-run'; New-Run 'gone-run' 'exp1'
    }

    It '-WhatIf says what would go and removes nothing' {
        $before = Get-Hashes
        $said = Invoke-ChildPwsh "`$env:GRID_STORE = '$env:GRID_STORE'; Import-Module '$ModulePath'; Remove-GridRun gone-run -WhatIf" | Out-String
        $said | Should -Match 'Remove run with 2 experiment\(s\), 4 artifact\(s\)'
        Get-Hashes | Should -Be $before
    }

    It 'in a session that cannot ask, says to add -Confirm:$false and removes nothing' {
        $before = Get-Hashes
        # Invoke-ChildPwsh runs pwsh -NonInteractive, as scheduled jobs and CI do.
        $said = Invoke-ChildPwsh "`$env:GRID_STORE = '$env:GRID_STORE'; Import-Module '$ModulePath'
            foreach (`$c in { Remove-GridRun gone-run }, { Remove-GridExperiment gone-run-exp1 }) {
                try { & `$c; 'no error' } catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }
            }"
        $said | Should -Not -Contain 'no error'
        @($said | Where-Object { $_ -like 'ConfirmationNotPossible,*' }) | Should -Be @(
            'ConfirmationNotPossible,GridArtifacts.Commands.RemoveGridRunCommand', 'ConfirmationNotPossible,GridArtifacts.Commands.RemoveGridExperimentCommand')
        $messages = @($said | Where-Object { $_ -like '*cannot ask*' })
        $messages.Count | Should -Be 2
        $messages | ForEach-Object { $_ | Should -BeLike '*-Confirm:$false*' }
        $messages[0] | Should -BeLike "*'gone-run'*"
        $messages[1] | Should -BeLike "*'gone-run-exp1'*"
        ($said -join "`n") | Should -Not -Match 'Read and Prompt functionality'
        Get-Hashes | Should -Be $before
    }

    It 'removes exactly the run asked for; every other run stays byte-exact' {
        $keep = Get-Hashes | Where-Object { $_ -like 'keep-run-*' }
        Remove-GridRun gone-run -Confirm:$false -InformationVariable info
        Get-GridRun gone-run -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Get-Hashes | Should -Be $keep
        $info.MessageData | Should -Match 'Removed gone-run: 2 experiment\(s\), 4 artifact\(s\)'
        Join-Path $env:GRID_STORE 'runs/gone-run' | Should -Not -Exist
    }

    It 'removes exactly one experiment' {
        Remove-GridExperiment gone-run-exp1 -Confirm:$false
        (Get-GridExperiment gone-run).Id | Should -Be 'gone-run-exp0'
        (Get-GridArtifact gone-run).Count | Should -Be 2
        (Get-GridArtifact keep-run).Count | Should -Be 4
    }

    It 'asks for an experiment name rather than removing a run' {
        { Remove-GridExperiment gone-run -Confirm:$false } | Should -Throw -ErrorId 'ExperimentNotNamed,GridArtifacts.Commands.RemoveGridExperimentCommand'
        (Get-GridArtifact gone-run).Count | Should -Be 4
    }

    It 'refuses a running experiment unless -Force stops it first' {
        $run = Start-GridRun -Name 'busy-run' -Command 'echo x > x.txt; sleep 120' -WorkingRoot (Join-Path $TestDrive 'work')
        $deadline = (Get-Date).AddSeconds(30)
        while ((Get-GridRun busy-run).Status -ne 'Running' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        Remove-GridRun busy-run -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ExperimentRunning,*'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
        (Get-GridRun busy-run).Status | Should -Be 'Running'
        Remove-GridRun busy-run -Force -Confirm:$false
        Get-GridRun busy-run -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (Get-GridArtifact keep-run).Count | Should -Be 4
    }

    It 'removes a run whose experiments wait as Queued: they never start, and the run does not come back' {
        $work = Join-Path $TestDrive 'queued-work'
        Start-GridRun -Name 'queued-run' -Command 'echo {i} > ran.txt; sleep 120' -Parameter @{ i = 1, 2, 3 } -ThrottleLimit 1 -WorkingRoot $work | Out-Null
        $deadline = (Get-Date).AddSeconds(30)
        while ((Get-GridExperiment queued-run-exp0).Status -ne 'Running' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        (Get-GridExperiment queued-run).Status | Should -Be @('Running', 'Queued', 'Queued')
        Remove-GridRun queued-run -Force -Confirm:$false
        Get-GridRun queued-run -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        # The supervisor goes on to the queued ones once exp0 has stopped; wait until it has gone through them.
        $folder = Get-RunFolder $work queued-run
        $plan = Join-Path $folder plan.json
        $deadline = (Get-Date).AddSeconds(90)
        while ((Get-Process | Where-Object { $_.CommandLine -and $_.CommandLine.Contains($plan) }) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 250 }
        Get-Process | Where-Object { $_.CommandLine -and $_.CommandLine.Contains($plan) } | Should -BeNullOrEmpty
        # It went on to the queued ones after exp0 (one experiment's end never ends the supervisor), and each ran nothing.
        $log = Get-Content -Raw (Join-Path $folder supervisor.log)
        foreach ($e in 'exp1', 'exp2') { $log | Should -Match "queued-run-${e}: Experiment(Exists|Removed)" }
        Get-GridRun queued-run -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Join-Path $env:GRID_STORE 'runs/queued-run' | Should -Not -Exist
        Join-Path $folder exp1/ran.txt | Should -Not -Exist
        Join-Path $folder exp2/ran.txt | Should -Not -Exist
        (Get-GridArtifact keep-run).Count | Should -Be 4
    }

    It 'does not remove a run from an experiment piped in' {
        { Get-GridExperiment gone-run-exp1 | Remove-GridRun -Confirm:$false -ErrorAction Stop } | Should -Throw
        (Get-GridExperiment gone-run).Count | Should -Be 2
    }
}
