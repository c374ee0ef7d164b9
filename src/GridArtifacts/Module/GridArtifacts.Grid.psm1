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
