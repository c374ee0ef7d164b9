<#
.SYNOPSIS
    grid-agent, the capture agent as one native executable, beside pwsh with the module and beside
    aws cli and rclone: start to the script's first instruction, peak memory of an idle run, and one
    small experiment as a whole process.
.DESCRIPTION
    On the folder store, s3rver (-Endpoint) and Ceph's RADOS Gateway (-RgwEndpoint, when given), each
    figure the median of -Runs, the tools interleaved (one of each in turn, round after round), a
    sync before each:
      - start to first instruction: bash notes $EPOCHREALTIME and execs the tool; the experiment's
        command is bash, whose first instruction notes $EPOCHREALTIME again. For
        `grid-agent run -s STORE -- bash -c ...` and for pwsh -NoProfile -File (Import-Module;
        Invoke-GridExperiment -Store STORE -- bash -c ...).
      - peak RSS of an idle run: /usr/bin/time -f %M of `grid-agent run -s STORE -- true`, of the pwsh
        equivalent (Invoke-GridExperiment -- true), and of pwsh that only imports the module.
      - one small experiment, whole process (its command writes one file of -Kilobytes): grid-agent run;
        pwsh (Import-Module; Start-GridRun -Command ... -Wait); pwsh (Import-Module) alone, the
        baseline Start-GridRun's target is counted from; rclone copy and aws s3 cp of such a file.
    pwsh is started as the module's Slurm job script starts it: its executable (under the dotnet
    host, with pwsh.dll) with -NoProfile.
.PARAMETER ModulePath
    The staged module (out/GridArtifacts): its agent/linux-x64/grid-agent is measured.
.PARAMETER Endpoint
    The s3rver endpoint (build.ps1 passes it).
.PARAMETER Bucket
    The bucket on it (made on RGW when missing).
.PARAMETER RgwEndpoint
    RGW's endpoint; without it the RGW rows are left out.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -BenchFilter Agent*
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $RgwEndpoint,
    [int] $Runs = 5,
    [int] $Kilobytes = 1024,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults,
    [string] $RgwConf = $env:GRID_BENCH_RGW_CONF
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
$moduleDir = if (Test-Path $ModulePath -PathType Container) { (Resolve-Path $ModulePath).Path } else { Split-Path (Resolve-Path $ModulePath).Path }
$agent = Join-Path $moduleDir 'agent/linux-x64/grid-agent'
if (-not (Test-Path $agent)) { throw "No grid-agent at ${agent}: build with build.ps1 -Task Build." }
# pwsh as the job script starts it: its own executable, with pwsh.dll when that is the dotnet host.
$pwsh = if ((Split-Path -Leaf ([Environment]::ProcessPath)) -like 'dotnet*') { @([Environment]::ProcessPath, (Join-Path $PSHOME 'pwsh.dll')) } else { @([Environment]::ProcessPath) }
$id = [guid]::NewGuid().ToString('N').Substring(0, 8)
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-agent-$id"
New-Item -ItemType Directory -Path $work | Out-Null
$prefix = "agent-bench-$id"

$servers = @([pscustomobject]@{ Name = 'folder'; Store = (Join-Path $work 'store'); Endpoint = $null; Remote = $null; Peer = $null })
foreach ($s in @(@{ Name = 's3rver'; Endpoint = $Endpoint; Remote = 's3rver'; Provider = 'Other' }, @{ Name = 'RGW'; Endpoint = $RgwEndpoint; Remote = 'rgw'; Provider = 'Ceph' })) {
    if (-not $s.Endpoint) { Write-Host "No endpoint for $($s.Name): its rows are left out." -ForegroundColor Yellow; continue }
    $servers += [pscustomobject]@{ Name = $s.Name; Endpoint = $s.Endpoint; Remote = $s.Remote; Peer = (Get-PeerSetup $s.Endpoint $s.Remote $s.Provider)
        Store = "s3://$Bucket/$prefix/grid?endpoint=$([uri]::EscapeDataString($s.Endpoint))" }
}
$rgw = $servers | Where-Object Name -eq 'RGW'
if ($rgw) {
    try { $null = Invoke-Peer $rgw.Peer.Aws @('--endpoint-url', $rgw.Endpoint, 's3api', 'head-bucket', '--bucket', $Bucket) $rgw.Peer.Env }
    catch { $null = Invoke-Peer $rgw.Peer.Aws @('--endpoint-url', $rgw.Endpoint, 's3', 'mb', "s3://$Bucket") $rgw.Peer.Env }
}

$n = 0
function New-Name([string] $What) { $script:n++; "$What-$script:n" }

# Seconds the whole process took (a sync first); it must exit 0.
function Measure-Process([string[]] $Argv, [hashtable] $Environment = @{}) {
    & sync
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $null = Invoke-Peer $Argv[0] @($Argv | Select-Object -Skip 1) $Environment
    $sw.Elapsed.TotalSeconds
}

# A pwsh script file under $work, started with -NoProfile -File; returns the command line.
function New-PwshStep([string] $Body) {
    $file = Join-Path $work "step-$(New-Name 'ps').ps1"
    Set-Content -LiteralPath $file -Value "`$ErrorActionPreference = 'Stop'`nImport-Module '$moduleDir'`n$Body"
    @($pwsh) + @('-NoProfile', '-NonInteractive', '-File', $file)
}

# Start to first instruction: bash notes the time and execs $Argv, whose experiment runs $probe.
function Measure-Start([scriptblock] $Argv) {
    $t0 = Join-Path $work "$(New-Name 't0').txt"
    $t1 = Join-Path $work "$(New-Name 't1').txt"
    $probe = "echo `$EPOCHREALTIME > `"$t1`""
    & sync
    $null = Invoke-Peer 'bash' (@('-c', 'echo $EPOCHREALTIME > "$0"; exec "$@"', $t0) + (& $Argv $probe))
    [double](Get-Content $t1) - [double](Get-Content $t0)
}

# Peak RSS in MiB of $Argv (the largest of it and what it waits for, as getrusage reports it).
function Measure-Rss([string[]] $Argv) {
    $out = Join-Path $work "$(New-Name 'rss').txt"
    & sync
    $null = Invoke-Peer '/usr/bin/time' (@('-f', '%M', '-o', $out) + $Argv)
    [double](Get-Content $out | Select-Object -Last 1) / 1024
}

$file = Join-Path $work 'upload/model.bin'
New-Item -ItemType Directory -Path (Split-Path $file) | Out-Null
& head -c ($Kilobytes * 1024) /dev/urandom > $file
$write = "head -c $($Kilobytes * 1024) /dev/urandom > model.bin"
$times = @{}
function Add-Time([string] $Key, [double] $Value) { if (-not $times[$Key]) { $times[$Key] = [Collections.Generic.List[double]]::new() }; $times[$Key].Add($Value) }

try {
    $importOnly = New-PwshStep ''
    foreach ($round in 0..$Runs) {
        # Round 0 warms the caches (the executable, the module's assemblies, each server) and is not counted.
        $keep = $round -gt 0
        foreach ($s in $servers) {
            $store = $s.Store
            $start = @{
                'grid-agent run' = { param($probe) $agent, 'run', '-q', '-s', $store, '-r', (New-Name 'st'), '-C', (Join-Path $work (New-Name 'wd')), '--', 'bash', '-c', $probe }
                'pwsh: Import-Module; Invoke-GridExperiment' = { param($probe) New-PwshStep "Invoke-GridExperiment -Store '$store' -Run '$(New-Name 'st')' -WorkingDirectory '$(Join-Path $work (New-Name 'wd'))' -- bash -c '$probe' | Out-Null" }
            }
            foreach ($tool in $start.Keys | Sort-Object) { $t = Measure-Start $start[$tool]; if ($keep) { Add-Time "start|$tool|$($s.Name)" $t } }

            $rss = [ordered]@{
                'grid-agent run -- true' = @($agent, 'run', '-q', '-s', $store, '-r', (New-Name 'idle'), '-C', (Join-Path $work (New-Name 'wd')), '--', 'true')
                'pwsh: Import-Module; Invoke-GridExperiment -- true' = New-PwshStep "Invoke-GridExperiment -Store '$store' -Run '$(New-Name 'idle')' -WorkingDirectory '$(Join-Path $work (New-Name 'wd'))' -- true | Out-Null"
            }
            foreach ($tool in $rss.Keys) { $m = Measure-Rss $rss[$tool]; if ($keep) { Add-Time "rss|$tool|$($s.Name)" $m } }

            $whole = [ordered]@{
                'grid-agent run' = @($agent, 'run', '-q', '-s', $store, '-r', (New-Name 'one'), '-C', (Join-Path $work (New-Name 'wd')), '--', 'sh', '-c', $write)
                'pwsh: Import-Module; Start-GridRun -Wait' = New-PwshStep "`$r = Start-GridRun -Command '$write' -Store '$store' -Name '$(New-Name 'one')' -WorkingRoot '$(Join-Path $work 'roots')' -Wait`nif (`$r.Status -ne 'Succeeded') { throw `"Start-GridRun ended `$(`$r.Status)`" }"
            }
            if ($s.Peer) {
                $whole['rclone copy'] = @('rclone', 'copy', $file, "$($s.Remote):$Bucket/$prefix/rclone/$(New-Name 'rc')/")
                $whole['aws s3 cp'] = @($s.Peer.Aws, 's3', 'cp', '--quiet', '--endpoint-url', $s.Endpoint, $file, "s3://$Bucket/$prefix/aws/$(New-Name 'aws')/model.bin")
            }
            $peerEnv = if ($s.Peer) { $s.Peer.Env } else { @{} }
            foreach ($tool in $whole.Keys) { $t = Measure-Process $whole[$tool] $peerEnv; if ($keep) { Add-Time "whole|$tool|$($s.Name)" $t } }
        }
        $t = Measure-Process $importOnly; if ($keep) { Add-Time 'whole|pwsh: Import-Module alone|any' $t }
        Write-Host "round $round of $Runs done"
    }

    # The tables: median, [lowest-highest] of the runs, and the ratio the target is about.
    $median = { param($k) Get-MedianOf $times[$k] }
    $spread = { param($k, $f, $scale = 1) $v = @($times[$k] | Sort-Object); "[$($f -f ($v[0] * $scale))-$($f -f ($v[-1] * $scale))]" }
    $names = @($servers | ForEach-Object Name)
    $ms = '{0:0.0}'
    $lines = @("Measured $(Get-Date -Format 'yyyy-MM-dd') on the project's machine (2 cores, shared with other builds), medians of $Runs interleaved rounds after one warm-up round, a sync before each process; [lowest-highest] of the runs.", '',
        '**Start to the script''s first instruction** (bash notes `$EPOCHREALTIME and execs the tool; the experiment''s command is bash noting it again). Target: grid-agent at most 50 ms.', '',
        '| tool | store | median | runs | vs grid-agent | target |', '|---|---|---:|---|---:|---|')
    foreach ($sv in $names) {
        $a = & $median "start|grid-agent run|$sv"
        foreach ($tool in 'grid-agent run', 'pwsh: Import-Module; Invoke-GridExperiment') {
            $k = "start|$tool|$sv"; $m = & $median $k
            $target = if ($tool -eq 'grid-agent run') { if ($m -le 0.050) { 'met (<= 50 ms)' } else { "missed by $($ms -f (($m - 0.050) * 1000)) ms" } } else { '' }
            $lines += "| $tool | $sv | $($ms -f ($m * 1000)) ms | $(& $spread $k '{0:0}' 1000) ms | $('{0:0.0}x' -f ($m / $a)) | $target |"
        }
    }
    $lines += '', '**Peak RSS of an idle run** (/usr/bin/time -f %M: the largest of the process and what it waited for). Target: grid-agent at most 40 MiB.', '',
        '| tool | store | median | runs | target |', '|---|---|---:|---|---|'
    foreach ($sv in $names) {
        foreach ($tool in 'grid-agent run -- true', 'pwsh: Import-Module; Invoke-GridExperiment -- true') {
            $k = "rss|$tool|$sv"; $m = & $median $k
            $target = if ($tool -like 'grid-agent*') { if ($m -le 40) { 'met (<= 40 MiB)' } else { "missed by $('{0:0.0}' -f ($m - 40)) MiB" } } else { '' }
            $lines += "| $tool | $sv | $('{0:0.0}' -f $m) MiB | $(& $spread $k '{0:0.0}') | $target |"
        }
    }
    $base = & $median 'whole|pwsh: Import-Module alone|any'
    $lines += '', "**One small experiment, whole process** (its command writes one file of $Kilobytes KiB; the peers copy such a file). Targets: Start-GridRun -Wait at most 1 s beyond pwsh's start and Import-Module; grid-agent run within 3x rclone copy.", '',
        '| tool | store | median | runs (s) | vs rclone copy | target |', '|---|---|---:|---|---:|---|',
        "| pwsh: Import-Module alone | | $(Format-Seconds $base) | $(& $spread 'whole|pwsh: Import-Module alone|any' '{0:0.00}') | | (the baseline) |"
    foreach ($sv in $names) {
        $rk = "whole|rclone copy|$sv"
        $rc = if ($times[$rk]) { & $median $rk } else { $null }
        foreach ($tool in 'grid-agent run', 'pwsh: Import-Module; Start-GridRun -Wait', 'rclone copy', 'aws s3 cp') {
            $k = "whole|$tool|$sv"
            if (-not $times[$k]) { continue }
            $m = & $median $k
            $ratio = if ($rc) { '{0:0.00}x' -f ($m / $rc) } else { '' }
            $target = switch ($tool) {
                'grid-agent run' { if ($rc) { if ($m -le 3 * $rc) { 'met (<= 3x)' } else { "missed: $('{0:0.00}' -f ($m / $rc))x" } } }
                'pwsh: Import-Module; Start-GridRun -Wait' { $over = $m - $base; if ($over -le 1) { "met: +$(Format-Seconds $over) over the baseline" } else { "missed: +$(Format-Seconds $over) over the baseline" } }
                default { '' }
            }
            $lines += "| $tool | $sv | $(Format-Seconds $m) | $(& $spread $k '{0:0.00}') | $ratio | $target |"
        }
    }
    $body = $lines -join "`n"
    Write-Host $body
    if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'The agent as one executable (grid-agent)' -Body $body -First }
}
finally {
    foreach ($s in $servers | Where-Object Peer) {
        try { $null = Invoke-Peer 'rclone' @('purge', "$($s.Remote):$Bucket/$prefix") $s.Peer.Env } catch { Write-Warning "Could not remove $prefix from $($s.Name): $_" }
    }
    if ($rgw -and $RgwConf) { $null = Invoke-Peer 'radosgw-admin' @('-c', $RgwConf, 'gc', 'process', '--include-all') }
    & rm -rf $work
}
