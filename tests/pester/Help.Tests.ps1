# The built help as users read it (Get-Help), and every example in it run against a store of its own.
BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-GridTestModule | Out-Null
    # The cmdlets (MAML help) and the grid function (comment-based help).
    $cmdlets = @(Get-Command -Module GridArtifacts | Sort-Object Name)
    $script:Commands = foreach ($c in $cmdlets) { @{ Name = $c.Name } }
    $script:Examples = foreach ($c in $cmdlets) {
        $n = 0
        foreach ($e in @((Get-Help $c.Name).examples.example)) {
            $n++
            @{ Command = $c.Name; Number = $n; Title = ($e.title -replace '^-+\s*|\s*-+$', ''); Code = [string]$e.code }
        }
    }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $script:HelpSource = Join-Path $PSScriptRoot '../../docs/help'
    Assert-S3Server
    $script:Saved = @{ HOME = $env:HOME; GRID_STORE = $env:GRID_STORE; GRID_CONFIG_HOME = $env:GRID_CONFIG_HOME; BROWSER = $env:BROWSER }
    $script:Transfer = Get-GridTransferOption

    # Examples that cannot run unattended say so in their markdown, under their heading:
    # <!-- not-run: reason -->. Those are the only ones left out.
    $script:NotRun = @{}
    foreach ($file in Get-ChildItem $HelpSource -Filter '*-*.md') {
        $title = $null
        foreach ($line in Get-Content -LiteralPath $file.FullName) {
            if ($line -match '^### (.+?)\s*$') { $title = $Matches[1] }
            elseif ($line -match '^\s*<!--\s*not-run:\s*(.+?)\s*-->' -and $title) { $NotRun["$($file.BaseName)|$title"] = $Matches[1] }
        }
    }

    # What the examples act on: a store with my-run (exp0 and exp1, captured from train.py, so they
    # have logs) and old-run, and a working folder with train.py and ./outputs.
    $script:Template = Join-Path $TestDrive 'template'
    $work = Join-Path $Template 'work'
    New-Item -ItemType Directory -Force -Path "$work/outputs/checkpoints" | Out-Null
    Set-Content -Path "$work/outputs/metrics.csv" -Value "epoch,loss`n1,0.5"
    [IO.File]::WriteAllBytes("$work/outputs/checkpoints/epoch=1.ckpt", [byte[]](1..200))
    Set-Content -Path "$work/train.py" -Value @'
import argparse, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
os.makedirs("checkpoints", exist_ok=True)
with open("metrics.csv", "w") as m:
    m.write("epoch,loss\n")
    for epoch in range(1, args.epochs + 1):
        loss = round(1 / (epoch * (1 + 10 * args.lr)), 4)
        m.write(f"{epoch},{loss}\n")
        with open(f"checkpoints/epoch={epoch}.ckpt", "wb") as f:
            f.write(os.urandom(1024))
        print(f"epoch {epoch}: loss {loss}", flush=True)
print("warning: this is a small example", file=sys.stderr)
'@
    $store = Join-Path $Template 'store'
    foreach ($e in @{ Experiment = 'exp0'; Lr = '0.1' }, @{ Experiment = 'exp1'; Lr = '0.01' }) {
        $dir = Join-Path $TestDrive "capture-$($e.Experiment)"
        New-Item -ItemType Directory -Force -Path $dir | Out-Null
        $exp = Invoke-GridExperiment -Store $store -Run my-run -Experiment $e.Experiment -WorkingDirectory $dir -Parameter @{ lr = $e.Lr } -- python3 (Join-Path $work 'train.py') --lr $e.Lr
        if ($exp.Status -ne 'Succeeded') { throw "The fixture run failed: $($exp.Status)" }
    }
    Import-GridArtifact "$work/outputs" -Store $store -Run old-run | Out-Null

    function Invoke-Example([string] $Code) {
        $dir = Join-Path $TestDrive ('example-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
        Copy-Item -Recurse $Template $dir
        $store = Join-Path $dir 'store'
        $env:GRID_STORE = $store
        $env:GRID_CONFIG_HOME = Join-Path $dir 'config'
        $env:HOME = Join-Path $dir 'home'       # ~/.grid/work for runs the examples start
        New-Item -ItemType Directory -Path $env:HOME | Out-Null
        # Examples name the bucket s3://team-artifacts/ml: here it is a fresh prefix of the test
        # server's bucket, holding a copy of the runs. A browser an example opens is a no-op.
        $bucketWord = "(?<!['`"])s3://team-artifacts/ml(?=\s|$)"   # unquoted, as a whole argument
        if ($Code -match $bucketWord) {
            $s3 = (New-TestS3Store help)
            Copy-GridRun my-run, old-run -Store $store -Destination $s3 | Out-Null
            $Code = $Code -replace $bucketWord, "'$s3'"
        }
        $env:BROWSER = '/bin/true'
        Push-Location (Join-Path $dir 'work')
        try {
            $ErrorActionPreference = 'Stop'
            & ([scriptblock]::Create($Code)) *>&1 | Out-String -Width 200   # every stream checked, none on the console
        }
        finally {
            Pop-Location
            Stop-GridArtifactServer -Store $store -ErrorAction Ignore
            $t = $script:Transfer
            Set-GridTransferOption -MaxConcurrency $t.MaxConcurrency -BandwidthLimit ([long]$t.BandwidthLimit) -MemoryBudget $t.MemoryBudget
            # Runs an example started must end, and none may have failed.
            $deadline = (Get-Date).AddSeconds(60)
            while ((Get-GridRun -Active -Store $store) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 250 }
            $runs = @(Get-GridRun -Store $store)
            foreach ($k in $script:Saved.Keys) { [Environment]::SetEnvironmentVariable($k, $script:Saved[$k]) }
        }
        $runs | Where-Object Status -in 'Queued', 'Running', 'Syncing' | ForEach-Object { throw "Run $($_.Name) was still $($_.Status) a minute after the example." }
        $runs | Where-Object Status -in 'Failed', 'Lost' | ForEach-Object { throw "Run $($_.Name), started by the example, ended $($_.Status)." }
    }
}

AfterAll {
    foreach ($k in $script:Saved.Keys) { [Environment]::SetEnvironmentVariable($k, $script:Saved[$k]) }
    Remove-Module GridArtifacts -ErrorAction Ignore
}

Describe 'Help of <Name>' -ForEach $Commands {
    BeforeAll { $script:Help = Get-Help $Name -Full }

    It 'has a synopsis and a description' {
        $Help.Synopsis | Should -Not -BeNullOrEmpty
        $Help.Synopsis | Should -Not -Match "^\s*$Name\s*\[" # not the syntax PowerShell makes up when there is no help
        ($Help.description.Text -join "`n").Trim() | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $command = Get-Command $Name
        $names = @($command.Parameters.Keys | Where-Object { $_ -notin [System.Management.Automation.PSCmdlet]::CommonParameters } | Sort-Object)
        @($Help.parameters.parameter | Where-Object { $_ } | ForEach-Object name | Sort-Object) | Should -Be $names
        foreach ($p in $names) {
            $text = ((Get-Help $Name -Parameter $p).description.Text -join ' ').Trim()
            $text | Should -Not -BeNullOrEmpty -Because "-$p of $Name needs a description"
        }
    }

    It 'shows the parameters as the code declares them' {
        $command = Get-Command $Name
        foreach ($p in @($Help.parameters.parameter | Where-Object { $_ })) {
            $meta = $command.Parameters[$p.name]
            $meta | Should -Not -BeNullOrEmpty -Because "$Name documents -$($p.name)"
            $mandatory = @($command.ParameterSets.Parameters | Where-Object Name -eq $p.name | ForEach-Object IsMandatory)
            $p.required | Should -Be ([string](-not ($mandatory -contains $false))).ToLowerInvariant()
            $p.globbing | Should -Be ([string][bool]($meta.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })).ToLowerInvariant()
        }
    }

    It 'has at least two examples, each with code and an explanation' {
        $examples = @($Help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($e in $examples) {
            $e.code | Should -Not -BeNullOrEmpty
            ($e.remarks.Text -join '').Trim() | Should -Not -BeNullOrEmpty
        }
    }
}

Describe 'The about topic' {
    It 'explains stores, statuses, links, the artifacts page and the grid command' {
        $text = Get-Help about_GridArtifacts | Out-String
        foreach ($heading in 'STORES', 'STATUSES', 'LINKS', 'THE ARTIFACTS PAGE', 'THE GRID COMMAND') { $text | Should -Match "(?m)^$heading\s*$" }
        $text | Should -Match 'GRID_STORE'
        $text | Should -Match 's3://bucket/prefix\?endpoint='
    }
}

Describe 'Examples' {
    It 'leaves few examples out, each for a stated reason' {
        $NotRun.Count | Should -BeLessOrEqual 4
        foreach ($k in $NotRun.Keys) { $NotRun[$k] | Should -Not -BeNullOrEmpty }
    }

    It '<Command> example <Number> runs: <Title>' -ForEach $Examples {
        $reason = $NotRun["$Command|$Title"]
        if ($reason) { Set-ItResult -Skipped -Because $reason; return }
        Invoke-Example $Code | Out-Null
    }
}

Describe 'The help build' {
    BeforeAll {
        $script:Generator = Join-Path $PSScriptRoot '../../build/New-MamlHelp.ps1'
        function Build-Help([string] $Source) {
            $outDir = Join-Path $TestDrive ('help-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
            $text = Invoke-ChildPwsh "& '$Generator' -ModulePath '$ModulePath' -SourcePath '$Source' -OutputPath '$outDir'; exit 0"
            [pscustomobject]@{ Text = $text -join "`n"; Xml = Join-Path $outDir 'GridArtifacts.dll-Help.xml' }
        }
    }

    It 'builds from the markdown as it is' {
        $r = Build-Help $HelpSource
        $r.Text | Should -Match 'Built help for \d+ cmdlets'
        $r.Xml | Should -Exist
    }

    It 'fails, naming each problem, when a parameter lacks a description or a cmdlet has one example' {
        $source = Join-Path $TestDrive 'broken-help'
        Copy-Item -Recurse $HelpSource $source
        $file = Join-Path $source 'Get-GridLog.md'
        $md = Get-Content -Raw $file
        $md = $md -replace '(?s)### -Stream\n.*?\n\n', ''
        $md = $md -replace '(?s)### Example 2.*?(?=## Related links)', ''
        Set-Content -Path $file -Value $md -NoNewline
        Remove-Item (Join-Path $source 'Get-GridRun.md')
        $r = Build-Help $source
        $r.Text | Should -Match 'Get-GridLog.md: -Stream has no description'
        $r.Text | Should -Match 'Get-GridLog.md: 1 example\(s\); at least two are needed'
        $r.Text | Should -Match 'Get-GridRun has no help'
        $r.Text | Should -Match 'The help is incomplete: 3 problem'
        $r.Xml | Should -Not -Exist
    }
}
