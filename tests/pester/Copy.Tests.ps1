# Copy-GridRun: promotion between stores, verified, resumable, source untouched.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Laptop = Join-Path $TestDrive 'laptop'
    $script:Team = (New-TestS3Store team)
    $script:Offline = Join-Path $TestDrive 'offline'
    foreach ($exp in 'exp0', 'exp1') {
        $src = Join-Path $TestDrive "src/$exp"
        New-Item -ItemType Directory -Force -Path "$src/ckpt", "$src/naïve" | Out-Null
        $b = [byte[]]::new(2000000); [Random]::new($exp.Length + [int][char]$exp[-1]).NextBytes($b)
        [IO.File]::WriteAllBytes("$src/ckpt/model.pt", $b)
        Set-Content "$src/naïve/résumé.txt" $exp
        [IO.File]::WriteAllBytes("$src/empty.bin", [byte[]]::new(0))
        Import-GridArtifact -Path $src -Run 'promoted-run' -Experiment $exp -Store $Laptop -Parameter @{ lr = '0.1' } | Out-Null
    }
    function Get-Fingerprint([string] $Store) {
        (Get-GridArtifact promoted-run -Store $Store | ForEach-Object { "$($_.ExperimentId)/$($_.Path)=$($_.Size)=$($_.Sha256)" }) -join "`n"
    }
    $script:Original = Get-Fingerprint $Laptop
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Copy-GridRun' {
    It 'promotes a local run to a bucket byte-exact, and leaves the source as it was' {
        $run = Copy-GridRun promoted-run -Store $Laptop -Destination $Team -PassThru
        $run.Name | Should -Be 'promoted-run'
        $run.ExperimentCount | Should -Be 2
        $run.Parameters['lr'] | Should -Be '0.1'
        Get-Fingerprint $Team | Should -Be $Original
        Get-Fingerprint $Laptop | Should -Be $Original
        $dest = Join-Path $TestDrive 'from-team'
        Get-GridArtifact promoted-run -Store $Team | Save-GridArtifact -Destination $dest
        (Get-FileHash (Join-Path $dest 'promoted-run/exp1/ckpt/model.pt')).Hash | Should -Be (Get-FileHash (Join-Path $TestDrive 'src/exp1/ckpt/model.pt')).Hash
    }

    It 'keeps a bucket run offline, and a second copy skips what is there' {
        Copy-GridRun promoted-run -Store $Team -Destination $Offline -InformationVariable first
        Get-Fingerprint $Offline | Should -Be $Original
        $first.MessageData | Should -Match '6 artifact\(s\) copied'
        Copy-GridRun promoted-run -Store $Team -Destination $Offline -InformationVariable second
        $second.MessageData | Should -Match '0 artifact\(s\) copied .*, 6 already there'
    }

    It 'resumes: only what is missing is copied again' {
        Remove-Item -LiteralPath (Join-Path $Offline 'runs/promoted-run/exp1/artifacts/ckpt/model.pt')
        Copy-GridRun promoted-run -Store $Team -Destination $Offline -InformationVariable again
        $again.MessageData | Should -Match '1 artifact\(s\) copied .*, 5 already there'
        Get-Fingerprint $Offline | Should -Be $Original
    }
}
