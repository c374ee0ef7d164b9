# The artifacts page as a PowerShell user starts it (tests/browser drives the page itself).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Local = Join-Path $TestDrive 'store'
    $script:S3 = (New-TestS3Store page)
    $src = Join-Path $TestDrive 'src'
    New-Item -ItemType Directory -Force -Path $src | Out-Null
    Set-Content -Path "$src/metrics.csv" -Value "step,loss`n1,0.5"
    foreach ($store in $Local, $S3) {
        Import-GridArtifact -Path $src -Run page-run -Experiment exp1 -Store $store | Out-Null
    }
    # A stand-in browser that records its command line (what every local user can read), one argument a line.
    $script:Opened = Join-Path $TestDrive 'opened.txt'
    $script:FakeBrowser = Join-Path $TestDrive 'browser.sh'
    Set-Content -Path $FakeBrowser -Value "#!/bin/sh`nfor a in `"`$@`"; do printf '%s\n' `"`$a`"; done > '$Opened.tmp' && mv '$Opened.tmp' '$Opened'"
    if (-not $IsWindows) { chmod +x $FakeBrowser }

    function Get-Page([uri] $Url, [string] $Path = '') {
        $session = $null
        Invoke-WebRequest -Uri $Url -SessionVariable session | Out-Null
        Invoke-WebRequest -Uri ([uri]::new($Url, $Path)) -WebSession $session
    }
}

AfterAll {
    foreach ($store in $Local, $S3) { Stop-GridArtifactServer -Store $store -ErrorAction Ignore }
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME, Env:BROWSER -ErrorAction Ignore
}

Describe 'Start-GridArtifactServer' {
    It 'serves the page of either store only with the token it prints (<Kind>)' -ForEach @(@{ Kind = 'local' }, @{ Kind = 's3' }) {
        $store = if ($Kind -eq 'local') { $Local } else { $S3 }
        $server = Start-GridArtifactServer -Store $store
        $server.PageUrl.Query | Should -Match '^\?token=[A-Za-z0-9_-]{43}$'
        $server.PageUrl.Host | Should -Be '127.0.0.1'
        (Invoke-WebRequest -Uri $server.Url -SkipHttpErrorCheck).StatusCode | Should -Be 401
        $runs = (Get-Page $server.PageUrl 'api/runs').Content | ConvertFrom-Json
        $runs.runs.name | Should -Be @('page-run')
        (Get-Page $server.PageUrl).Content | Should -Match '<title>Artifacts'
        (Start-GridArtifactServer -Store $store).PageUrl | Should -Be $server.PageUrl -Because 'starting again returns the running server'
    }

    It 'gives a new token after a restart, and the old address stops working' {
        $first = Start-GridArtifactServer -Store $Local
        Stop-GridArtifactServer -Store $Local
        $second = Start-GridArtifactServer -Store $Local
        $second.PageUrl | Should -Not -Be $first.PageUrl
        $old = [uri]::new($second.Url, $first.PageUrl.PathAndQuery)
        (Invoke-WebRequest -Uri $old -SkipHttpErrorCheck -MaximumRedirection 0).StatusCode | Should -Be 401
    }
}

Describe 'Show-GridArtifact' {
    It 'opens the page at a run and experiment in the browser, with no token on its command line' -Skip:$IsWindows {
        $env:BROWSER = $FakeBrowser
        try { $info = Show-GridArtifact page-run-exp1 -Store $Local 6>&1 }
        finally { Remove-Item Env:BROWSER }
        $info | Should -HaveCount 1
        "$info" | Should -Match '^Artifacts page: http://127\.0\.0\.1:\d+/\?token=\S+#run=page-run&exp=exp1$'
        $token = [regex]::Match("$info", 'token=([^#]+)').Groups[1].Value
        $deadline = [DateTime]::UtcNow.AddSeconds(10)
        while (-not (Test-Path $Opened) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        $argv = @(Get-Content $Opened)
        $argv | Should -HaveCount 1
        $argv[0].Contains($token) | Should -BeFalse -Because 'a command line is readable by every local user'
        # The browser is given a file only this user can read, holding a one-time code.
        $file = ([uri]$argv[0]).LocalPath
        [IO.File]::GetUnixFileMode($file) | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        $html = Get-Content -Raw $file
        $html.Contains($token) | Should -BeFalse
        $url = [Net.WebUtility]::HtmlDecode([regex]::Match($html, 'url=([^"]+)"').Groups[1].Value)
        $url | Should -Match '^http://127\.0\.0\.1:\d+/\?code=[A-Za-z0-9_-]{43}#run=page-run&exp=exp1$'
        (Get-Page ([uri]$url) 'api/experiments?run=page-run').Content | ConvertFrom-Json |
            ForEach-Object { $_.experiments.id } | Should -Be 'page-run-exp1'
        (Invoke-WebRequest -Uri $url -SkipHttpErrorCheck -MaximumRedirection 0).StatusCode | Should -Be 401 -Because 'the code works once'
    }

    It 'takes runs from the pipeline, and with -NoBrowser only says where the page is' {
        $info = Get-GridRun page-run -Store $S3 | Show-GridArtifact -NoBrowser -PassThru -InformationAction Ignore
        $info.Store | Should -Be $S3
        $info.PageUrl.Fragment | Should -Be '#run=page-run'
        (Get-Page $info.PageUrl 'api/store').Content | ConvertFrom-Json | ForEach-Object kind | Should -Be 'S3'
    }

    It 'refuses a run name that cannot exist' {
        { Show-GridArtifact '../etc' -Store $Local -NoBrowser -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidRunName*'
    }

    It 'warns, and still prints the address, when no browser can be started' {
        $env:BROWSER = Join-Path $TestDrive 'no-such-browser'
        try { $all = Show-GridArtifact -Store $Local 3>&1 6>&1 }
        finally { Remove-Item Env:BROWSER }
        ($all | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Message | Should -Match 'Could not open a browser'
        ($all | Where-Object { $_ -is [System.Management.Automation.InformationRecord] }) -join '' | Should -Match '^Artifacts page: http://127\.0\.0\.1'
    }
}
