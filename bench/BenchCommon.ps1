# Shared helpers for the benchmarks: timing with medians, peer tools, and the results table.

function Measure-Median {
    <# Runs $Script $Runs times (after one warm-up) and returns the median and all times in seconds; -Sync flushes the disk before each timed run. #>
    param([scriptblock] $Script, [int] $Runs = 5, [switch] $NoWarmup, [switch] $Sync)
    if (-not $NoWarmup) { & $Script | Out-Null }
    $times = foreach ($i in 1..$Runs) {
        if ($Sync) { sync }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        & $Script | Out-Null
        $sw.Elapsed.TotalSeconds
    }
    $sorted = @($times | Sort-Object)
    $median = if ($sorted.Count % 2) { $sorted[[int][math]::Floor($sorted.Count / 2)] } else { ($sorted[$sorted.Count / 2 - 1] + $sorted[$sorted.Count / 2]) / 2 }
    [pscustomobject]@{ Median = $median; Times = $sorted }
}

function Invoke-Peer {
    <# Runs a peer tool (aws, rclone) with s3rver's credentials and no CA bundle, failing loudly. #>
    param([string] $Exe, [string[]] $Arguments, [hashtable] $Environment = @{})
    $psi = [Diagnostics.ProcessStartInfo]::new($Exe)
    foreach ($a in $Arguments) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.Environment.Remove('AWS_CA_BUNDLE') | Out-Null
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $p = [Diagnostics.Process]::Start($psi)
    $stdout = $p.StandardOutput.ReadToEndAsync()
    $stderr = $p.StandardError.ReadToEndAsync()
    $p.WaitForExit()
    if ($p.ExitCode -ne 0) { throw "$Exe $($Arguments -join ' ') failed ($($p.ExitCode)): $($stderr.Result)" }
    $stdout.Result
}

function Invoke-TimedStep {
    <# One measurement in a fresh pwsh: imports $Module, sets the default -Store, then times $Body only (in-session seconds). The step's script is written under $Work. #>
    param([string] $Module, [string] $Store, [string] $Body, [string] $Work)
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$Module'
`$PSDefaultParameterValues['*-Grid*:Store'] = '$Store'
`$sw = [Diagnostics.Stopwatch]::StartNew()
$Body
'ELAPSED ' + `$sw.Elapsed.TotalSeconds.ToString([Globalization.CultureInfo]::InvariantCulture)
"@
    $file = Join-Path $Work "step-$([guid]::NewGuid().ToString('N')).ps1"
    Set-Content -Path $file -Value $script
    $out = & dotnet pwsh -NoProfile -NonInteractive -File $file 2>&1 | ForEach-Object { "$_" }
    $line = $out | Where-Object { $_ -like 'ELAPSED *' } | Select-Object -Last 1
    if (-not $line) { throw "The step failed: $($out -join "`n")" }
    [double]::Parse($line.Substring(8), [Globalization.CultureInfo]::InvariantCulture)
}

function Get-MedianOf([double[]] $t) { $s = @($t | Sort-Object); if ($s.Count % 2) { $s[[int][math]::Floor($s.Count / 2)] } else { ($s[$s.Count / 2 - 1] + $s[$s.Count / 2]) / 2 } }

function Format-Seconds([double] $s) { '{0:0.000} s' -f $s }

function Write-ResultsSection {
    <# Replaces (or appends; with -First, puts before every other section) one '## <Title>' section of bench/results.md. #>
    param([string] $Path, [string] $Title, [string] $Body, [switch] $First)
    $text = if (Test-Path $Path) { Get-Content -Raw $Path } else { "# Benchmark results`n`nMedians of several runs on this project's 2-core machine; figures from shared, noisy machines, so compare within one run.`n" }
    $section = "## $Title`n`n$Body`n"
    $pattern = "(?ms)^## $([regex]::Escape($Title))\s*\n.*?(?=^## |\z)"
    $text = if ($text -match $pattern) { [regex]::Replace($text, $pattern, $section + "`n") }
    elseif ($First -and $text -match '(?m)^## ') { $at = [regex]::Match($text, '(?m)^## ').Index; $text.Substring(0, $at) + $section + "`n" + $text.Substring($at) }
    else { $text.TrimEnd() + "`n`n" + $section }
    Set-Content -Path $Path -Value $text.TrimEnd() -NoNewline
    Add-Content -Path $Path -Value ''
}

# s3rver's fixed test identity, for the module through the SDK's standard chain.
$env:AWS_ACCESS_KEY_ID = 'S3RVER'
$env:AWS_SECRET_ACCESS_KEY = 'S3RVER'
$env:AWS_REGION = 'us-east-1'

# How the peer tools reach s3rver: aws cli (Debian's, not a user-local copy) and rclone through a remote named s3rver
# (-Remote and -Provider name another, e.g. rgw with rclone's Ceph provider; the test identity is the same).
function Get-PeerSetup([string] $Endpoint, [string] $Remote = 's3rver', [string] $Provider = 'Other') {
    $r = "RCLONE_CONFIG_$($Remote.ToUpperInvariant())"
    [pscustomobject]@{
        Aws = if (Test-Path /usr/bin/aws) { '/usr/bin/aws' } else { 'aws' }
        Env = @{ AWS_ACCESS_KEY_ID = 'S3RVER'; AWS_SECRET_ACCESS_KEY = 'S3RVER'; AWS_DEFAULT_REGION = 'us-east-1'
            "${r}_TYPE" = 's3'; "${r}_PROVIDER" = $Provider; "${r}_ENDPOINT" = $Endpoint
            "${r}_ACCESS_KEY_ID" = 'S3RVER'; "${r}_SECRET_ACCESS_KEY" = 'S3RVER'; "${r}_FORCE_PATH_STYLE" = 'true' }
    }
}
