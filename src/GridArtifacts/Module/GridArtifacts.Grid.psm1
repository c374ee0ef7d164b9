# The product's own command line, for people coming from it:
#   grid status              active runs                 -> Get-GridRun -Active
#   grid status <run>        the experiments of a run    -> Get-GridExperiment <run>
#   grid history             finished runs               -> Get-GridRun -Finished
#   grid artifacts <names>   download artifacts          -> Save-GridArtifact <names> -Destination ./grid_artifacts
#       --download_dir <dir>   where to put them (default ./grid_artifacts)
#       -m, --match_regex <re> only paths matching the regular expression
# Files land in <dir>/<run>/<expN>/<path>, so same-named files of different experiments never
# overwrite each other.

function grid {
    <#
    .SYNOPSIS
        The product's own command line: grid status, grid history and grid artifacts.
    .DESCRIPTION
        For people and scripts coming from the product's CLI. Each verb runs a GridArtifacts cmdlet
        on the store in effect ($env:GRID_STORE, Set-GridStore, or ~/.grid/store):

        grid status               active runs (Get-GridRun -Active)
        grid status <run>...      the experiments of runs (Get-GridExperiment)
        grid history              finished runs (Get-GridRun -Finished)
        grid history <run>...     those runs (Get-GridRun)
        grid artifacts <name>...  downloads the artifacts of runs or run-expN ids to
                                  <dir>/<run>/<expN>/<path> (Save-GridArtifact -PassThru)
            --download_dir <dir>    where to put them (./grid_artifacts by default)
            -m, --match_regex <re>  only paths matching the regular expression

        See about_GridArtifacts.
    .PARAMETER Verb
        status, history or artifacts.
    .PARAMETER Arguments
        Run names or run-expN ids, and the options of the verb (--download_dir, -m or --match_regex).
    .EXAMPLE
        grid status
        grid history

        Lists the runs that are still going, then the runs that have ended.
    .EXAMPLE
        grid artifacts my-run-exp0 my-run-exp1 --download_dir ./models -m '\.ckpt$'

        Downloads the checkpoints of two experiments of my-run to ./models/my-run/exp0/ and
        ./models/my-run/exp1/, verified, and lists each file.
    .LINK
        about_GridArtifacts
    #>
    [CmdletBinding(PositionalBinding = $false)]
    param(
        [Parameter(Position = 0)]
        [ValidateSet('status', 'history', 'artifacts')]
        [string] $Verb,

        [Parameter(ValueFromRemainingArguments = $true)]
        [string[]] $Arguments
    )

    if (-not $Verb) {
        throw [System.Management.Automation.ErrorRecord]::new(
            [System.ArgumentException]::new("Usage: grid status [run] | grid history | grid artifacts <run or run-expN>... [--download_dir DIR] [-m REGEX]"),
            'GridVerbMissing', 'InvalidArgument', $null)
    }

    $names = [System.Collections.Generic.List[string]]::new()
    $options = @{}
    for ($i = 0; $i -lt $Arguments.Count; $i++) {
        $a = $Arguments[$i]
        $value = $null
        if ($a -match '^(--[a-z_-]+)=(.*)$') { $a = $Matches[1]; $value = $Matches[2] }
        switch -CaseSensitive ($a) {
            { $_ -in '--download_dir', '--download-dir' } {
                if ($null -eq $value) { $i++; $value = $Arguments[$i] }
                $options['Destination'] = $value
                continue
            }
            { $_ -in '-m', '--match_regex', '--match-regex' } {
                if ($null -eq $value) { $i++; $value = $Arguments[$i] }
                $options['Match'] = $value
                continue
            }
            default {
                if ($a.StartsWith('-')) {
                    $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                        [System.ArgumentException]::new("grid ${Verb}: unknown option '$a'."), 'GridUnknownOption', 'InvalidArgument', $a))
                }
                $names.Add($a)
            }
        }
    }

    switch ($Verb) {
        'status' {
            if ($names.Count -gt 0) { Get-GridExperiment -Run $names } else { Get-GridRun -Active }
        }
        'history' {
            if ($names.Count -gt 0) { Get-GridRun -Name $names } else { Get-GridRun -Finished }
        }
        'artifacts' {
            if ($names.Count -eq 0) {
                $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                    [System.ArgumentException]::new('grid artifacts: name at least one run or run-expN.'), 'GridRunMissing', 'InvalidArgument', $null))
            }
            $destination = if ($options.ContainsKey('Destination')) { $options['Destination'] } else { 'grid_artifacts' }
            $save = @{ Run = $names; Destination = $destination; PassThru = $true }
            if ($options.ContainsKey('Match')) { $save['Match'] = $options['Match'] }
            Save-GridArtifact @save
        }
    }
}
