#Requires -Version 7.4
<#
.SYNOPSIS
    Builds the module's MAML help (en-US/GridArtifacts.dll-Help.xml) from docs/help/*.md.
.DESCRIPTION
    The prose comes from one markdown file per cmdlet (the format is described in
    docs/help-format.md); everything the code knows comes from the compiled cmdlets of the staged
    module: parameter types, positions, parameter sets, mandatory flags, pipeline input, aliases,
    wildcard support, default values, input and output types. So help cannot disagree with code.

    Fails (throws, listing every problem) when an exported cmdlet has no markdown file, lacks a
    synopsis or description, leaves a parameter or an input or output type undescribed, documents a
    parameter the cmdlet does not have, or has fewer than two examples.

    Run it in a pwsh of its own: it imports the staged module, and a loaded binary module cannot be
    unloaded. build.ps1 does that.
.EXAMPLE
    dotnet pwsh -NoProfile -File build/New-MamlHelp.ps1 -ModulePath out/GridArtifacts -SourcePath docs/help
.EXAMPLE
    dotnet pwsh -NoProfile -File build/New-MamlHelp.ps1 -ModulePath out/GridArtifacts -SourcePath ./my-docs -OutputPath ./check
    Checks other markdown without touching the staged module's help.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $SourcePath,
    # Where the help files go; the staged module's en-US folder by default.
    [string] $OutputPath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# ---- markdown ------------------------------------------------------------------------------------

# Splits a help markdown file into its sections: '## Name' sections, each holding its text and, for
# sections made of '### Item' entries, the items in order. Fenced code blocks are kept as they are.
function Read-HelpMarkdown([string] $Path) {
    $doc = [ordered]@{ Title = $null; Sections = [ordered]@{} }
    $section = $null
    $item = $null
    $inFence = $false
    foreach ($line in (Get-Content -LiteralPath $Path -Encoding utf8)) {
        if ($line -match '^\s*```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^# (.+?)\s*$' -and -not $doc.Title) { $doc.Title = $Matches[1]; continue }
        if (-not $inFence -and $line -match '^## (.+?)\s*$') {
            $section = [pscustomobject]@{ Name = $Matches[1]; Lines = [Collections.Generic.List[string]]::new(); Items = [Collections.Generic.List[object]]::new() }
            $doc.Sections[$section.Name.ToLowerInvariant()] = $section
            $item = $null
            continue
        }
        if (-not $inFence -and $line -match '^### (.+?)\s*$' -and $section) {
            $item = [pscustomobject]@{ Name = $Matches[1]; Lines = [Collections.Generic.List[string]]::new() }
            $section.Items.Add($item)
            continue
        }
        if ($item) { $item.Lines.Add($line) } elseif ($section) { $section.Lines.Add($line) }
    }
    if ($inFence) { throw "$Path has a code fence that is not closed." }
    [pscustomobject]$doc
}

# Paragraphs of prose: blank lines separate them; list items ('- ') start their own paragraph.
# HTML comments (markers for tools) are not prose.
function Get-Paragraphs([string[]] $Lines) {
    $paras = [Collections.Generic.List[string]]::new()
    $current = [Collections.Generic.List[string]]::new()
    $flush = { if ($current.Count) { $paras.Add(($current -join ' ').Trim()); $current.Clear() } }
    foreach ($line in $Lines) {
        if ($line -match '^\s*<!--.*-->\s*$') { continue }
        if ($line.Trim() -eq '') { & $flush; continue }
        if ($line -match '^\s*[-*] ') { & $flush }
        $current.Add($line.Trim())
    }
    & $flush
    $paras
}

# An example: its title, the code of its first fenced block, the prose after it, and whether it is
# marked <!-- not-run: reason --> (the help tests then do not run it).
function Read-Example($Item) {
    $code = [Collections.Generic.List[string]]::new()
    $before = [Collections.Generic.List[string]]::new()
    $after = [Collections.Generic.List[string]]::new()
    $state = 'before'
    $notRun = $null
    foreach ($line in $Item.Lines) {
        if ($line -match '^\s*<!--\s*not-run:\s*(.+?)\s*-->\s*$') { $notRun = $Matches[1]; continue }
        switch ($state) {
            'before' { if ($line -match '^\s*```') { $state = 'code' } else { $before.Add($line) } }
            'code' { if ($line -match '^\s*```') { $state = 'after' } else { $code.Add($line) } }
            'after' { $after.Add($line) }
        }
    }
    [pscustomobject]@{
        Title   = $Item.Name
        Code    = ($code -join "`n").Trim()
        Remarks = @(Get-Paragraphs $before) + @(Get-Paragraphs $after)
        NotRun  = $notRun
    }
}

# ---- what the code says --------------------------------------------------------------------------

$CommonParameters = [System.Management.Automation.PSCmdlet]::CommonParameters
$ShouldProcessText = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

function Get-TypeName([type] $Type) {
    if ($Type -eq [System.Management.Automation.SwitchParameter]) { return 'SwitchParameter' }
    if ($Type.IsArray) { return (Get-TypeName $Type.GetElementType()) + '[]' }
    if ($Type.IsGenericType -and $Type.GetGenericTypeDefinition() -eq [Nullable`1]) { return Get-TypeName $Type.GetGenericArguments()[0] }
    $Type.Name
}

function Get-FullTypeName([type] $Type) {
    if ($Type.IsArray) { return (Get-FullTypeName $Type.GetElementType()) + '[]' }
    $Type.FullName
}

# The default value of each parameter, read from a fresh instance of the cmdlet class.
function Get-Defaults([System.Management.Automation.CmdletInfo] $Command) {
    $defaults = @{}
    $instance = [Activator]::CreateInstance($Command.ImplementingType)
    foreach ($p in $Command.ImplementingType.GetProperties()) {
        if (-not $p.CanRead -or $p.GetIndexParameters().Count -or -not $Command.Parameters.ContainsKey($p.Name)) { continue }
        $value = $p.GetValue($instance)
        $text = if ($null -eq $value) { 'None' }
        elseif ($value -is [System.Management.Automation.SwitchParameter]) { if ($value.IsPresent) { 'True' } else { 'False' } }
        elseif ($value -is [Array]) { if ($value.Count) { $value -join ', ' } else { 'None' } }
        elseif ($value -is [string] -and $value -eq '') { 'None' }
        else { [string]$value }
        $defaults[$p.Name] = $text
    }
    $defaults
}

function Get-PipelineText($Metadata) {
    $how = @()
    if ($Metadata.ValueFromPipeline) { $how += 'ByValue' }
    if ($Metadata.ValueFromPipelineByPropertyName) { $how += 'ByPropertyName' }
    if ($how) { "True ($($how -join ', '))" } else { 'False' }
}

# Facts about one parameter across the parameter sets it belongs to.
function Get-ParameterFacts([System.Management.Automation.CmdletInfo] $Command, [string] $Name, $Defaults) {
    $meta = $Command.Parameters[$Name]
    $inSets = foreach ($set in $Command.ParameterSets) { $set.Parameters | Where-Object Name -eq $Name | ForEach-Object { [pscustomobject]@{ SetName = $set.Name; P = $_ } } }
    $inSets = @($inSets)
    $positions = @($inSets.P.Position | Sort-Object -Unique)
    $allSets = $meta.ParameterSets.ContainsKey('__AllParameterSets')
    [pscustomobject]@{
        Name        = $Name
        Type        = $meta.ParameterType
        Switch      = $meta.SwitchParameter
        Required    = ($inSets.Count -gt 0) -and -not ($inSets.P.IsMandatory -contains $false)
        Position    = if ($positions.Count -eq 1 -and $positions[0] -ge 0) { [string]$positions[0] } else { 'named' }
        Pipeline    = if ($inSets.Count) { Get-PipelineText $inSets[0].P } else { 'False' }
        ByValue     = [bool]($inSets.P.ValueFromPipeline -contains $true)
        Remaining   = [bool]($inSets.P.ValueFromRemainingArguments -contains $true)
        Globbing    = [bool]($meta.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        Aliases     = @($meta.Aliases)
        Default     = if ($Defaults.ContainsKey($Name)) { $Defaults[$Name] } else { 'None' }
        Sets        = @(if (-not $allSets -and $Command.ParameterSets.Count -gt 1) { $inSets.SetName })
        ValidSet    = @($meta.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } | ForEach-Object ValidValues)
    }
}

# ---- MAML ----------------------------------------------------------------------------------------

$ns = @{
    msh     = 'http://msh'
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}

function Write-Paras([System.Xml.XmlWriter] $W, [string[]] $Paras) {
    if (-not $Paras) { $W.WriteElementString('para', $ns.maml, ''); return }
    foreach ($p in $Paras) { $W.WriteElementString('para', $ns.maml, $p) }
}

function Write-Description([System.Xml.XmlWriter] $W, [string[]] $Paras) {
    $W.WriteStartElement('description', $ns.maml); Write-Paras $W $Paras; $W.WriteEndElement()
}

function Write-Parameter([System.Xml.XmlWriter] $W, $Facts, [string[]] $Paras, [string] $Position, [bool] $Required, [string] $Pipeline) {
    $W.WriteStartElement('parameter', $ns.command)
    $W.WriteAttributeString('required', $Required.ToString().ToLowerInvariant())
    $W.WriteAttributeString('variableLength', ([bool]$Facts.Type.IsArray).ToString().ToLowerInvariant())
    $W.WriteAttributeString('globbing', $Facts.Globbing.ToString().ToLowerInvariant())
    $W.WriteAttributeString('pipelineInput', $Pipeline)
    $W.WriteAttributeString('position', $Position)
    $W.WriteAttributeString('aliases', $(if ($Facts.Aliases.Count) { $Facts.Aliases -join ', ' } else { 'none' }))
    $W.WriteElementString('name', $ns.maml, $Facts.Name)
    Write-Description $W $Paras
    if ($Facts.ValidSet.Count) {
        $W.WriteStartElement('parameterValueGroup', $ns.command)
        foreach ($v in $Facts.ValidSet) {
            $W.WriteStartElement('parameterValue', $ns.command); $W.WriteAttributeString('required', 'false'); $W.WriteAttributeString('variableLength', 'false'); $W.WriteString($v); $W.WriteEndElement()
        }
        $W.WriteEndElement()
    }
    if (-not $Facts.Switch) {
        $W.WriteStartElement('parameterValue', $ns.command)
        $W.WriteAttributeString('required', 'true'); $W.WriteAttributeString('variableLength', ([bool]$Facts.Type.IsArray).ToString().ToLowerInvariant())
        $W.WriteString((Get-TypeName $Facts.Type)); $W.WriteEndElement()
    }
    $W.WriteStartElement('type', $ns.dev); $W.WriteElementString('name', $ns.maml, (Get-TypeName $Facts.Type)); $W.WriteElementString('uri', $ns.maml, ''); $W.WriteEndElement()
    $W.WriteElementString('defaultValue', $ns.dev, $Facts.Default)
    $W.WriteEndElement()
}

# ---- one cmdlet ----------------------------------------------------------------------------------

function Test-TypeHeading([string] $Heading, [type] $Type) {
    $h = $Heading.Trim('`', ' ')
    $h -eq (Get-FullTypeName $Type) -or $h -eq (Get-TypeName $Type) -or $h -eq $Type.FullName -or $h -eq $Type.Name
}

function Write-CommandHelp([System.Xml.XmlWriter] $W, [System.Management.Automation.CmdletInfo] $Command, $Doc, [string] $File, [Collections.Generic.List[string]] $Problems) {
    $name = $Command.Name
    $problem = { param($text) $Problems.Add("${File}: $text") }
    if ($Doc.Title -ne $name) { & $problem "the title must be '# $name' (it is '$($Doc.Title)')." }

    $section = { param($key) if ($Doc.Sections.Contains($key)) { $Doc.Sections[$key] } else { $null } }
    $itemsOf = { param($key) if ($Doc.Sections.Contains($key)) { $Doc.Sections[$key].Items } }
    $linesOf = { param($key) if ($Doc.Sections.Contains($key)) { $Doc.Sections[$key].Lines } }
    $synopsis = @(if (& $section 'synopsis') { Get-Paragraphs (& $section 'synopsis').Lines })
    $description = @(if (& $section 'description') { Get-Paragraphs (& $section 'description').Lines })
    if (-not $synopsis) { & $problem 'no synopsis (## Synopsis).' }
    if (-not $description) { & $problem 'no description (## Description).' }

    # Parameters: every one the cmdlet has (common parameters aside) needs prose; none may be extra.
    $paramDocs = @{}
    $defaultDocs = @{}
    if (& $section 'parameters') {
        foreach ($item in (& $section 'parameters').Items) {
            $pname = $item.Name.TrimStart('-').Trim('`')
            if (-not $Command.Parameters.ContainsKey($pname) -or $pname -in $CommonParameters) { & $problem "documents -$pname, which $name does not have."; continue }
            $paramDocs[$pname] = @(Get-Paragraphs ($item.Lines | Where-Object { $_ -notmatch '^Default value:' }))
            $given = $item.Lines | Where-Object { $_ -match '^Default value:\s*(.+?)\s*$' } | ForEach-Object { $Matches[1] } | Select-Object -First 1
            if ($given) { $defaultDocs[$pname] = $given }
        }
    }
    $defaults = Get-Defaults $Command
    foreach ($k in $defaultDocs.Keys) { $defaults[$k] = $defaultDocs[$k] }
    $params = foreach ($pname in $Command.Parameters.Keys) {
        if ($pname -in $CommonParameters) { continue }
        $facts = Get-ParameterFacts $Command $pname $defaults
        $paras = if ($paramDocs.ContainsKey($pname) -and $paramDocs[$pname].Count) { $paramDocs[$pname] } elseif ($ShouldProcessText.ContainsKey($pname)) { @($ShouldProcessText[$pname]) } else { @() }
        if (-not $paras) { & $problem "-$pname has no description (### -$pname under ## Parameters)." }
        if ($facts.Sets.Count) { $paras = @($paras) + "Parameter sets: $($facts.Sets -join ', ')." }
        if ($facts.ValidSet.Count) { $paras = @($paras) + "Accepted values: $($facts.ValidSet -join ', ')." }
        [pscustomobject]@{ Facts = $facts; Paras = $paras }
    }
    # In source order of the markdown where given, then the rest as the code declares them.
    $order = @((& $itemsOf 'parameters') | ForEach-Object { $_.Name.TrimStart('-').Trim('`') })
    $params = @($params | Sort-Object { $i = [array]::IndexOf($order, $_.Facts.Name); if ($i -lt 0) { 1000 } else { $i } })

    # Inputs: the types bound by value must be described; more (objects bound by property name) may be.
    $inputTypes = @($params | Where-Object { $_.Facts.ByValue } | ForEach-Object { $_.Facts.Type } | Sort-Object FullName -Unique)
    $inputItems = @((& $itemsOf 'inputs'))
    foreach ($t in $inputTypes) {
        $it = $inputItems | Where-Object { Test-TypeHeading $_.Name $t } | Select-Object -First 1
        if (-not $it -or -not (Get-Paragraphs $it.Lines)) { & $problem "the input type $(Get-FullTypeName $t) is not described (### $(Get-FullTypeName $t) under ## Inputs)." }
    }
    if (-not $inputItems -and -not $inputTypes) { & $problem 'no ## Inputs section (write ### None when nothing is taken from the pipeline).' }

    # Outputs: the [OutputType] types, each described.
    $outputTypes = @($Command.OutputType | ForEach-Object { $_.Type } | Where-Object { $_ -and $_ -ne [void] })
    $outputItems = @((& $itemsOf 'outputs'))
    foreach ($t in $outputTypes) {
        $it = $outputItems | Where-Object { Test-TypeHeading $_.Name $t } | Select-Object -First 1
        if (-not $it -or -not (Get-Paragraphs $it.Lines)) { & $problem "the output type $($t.FullName) is not described (### $($t.FullName) under ## Outputs)." }
    }
    foreach ($it in $outputItems) {
        if ($it.Name -ne 'None' -and -not ($outputTypes | Where-Object { Test-TypeHeading $it.Name $_ })) { & $problem "documents the output $($it.Name), which [OutputType] of $name does not declare." }
    }
    if (-not $outputItems) { & $problem 'no ## Outputs section (write ### None when nothing is written).' }

    $examples = @((& $itemsOf 'examples') | ForEach-Object { Read-Example $_ })
    if ($examples.Count -lt 2) { & $problem "$($examples.Count) example(s); at least two are needed." }
    foreach ($e in $examples) {
        if (-not $e.Code) { & $problem "example '$($e.Title)' has no code block." }
        if (-not $e.Remarks) { & $problem "example '$($e.Title)' says nothing about what it does." }
    }

    $W.WriteStartElement('command', 'command', $ns.command)
    $W.WriteAttributeString('xmlns', 'maml', $null, $ns.maml)
    $W.WriteAttributeString('xmlns', 'dev', $null, $ns.dev)
    $W.WriteStartElement('details', $ns.command)
    $W.WriteElementString('name', $ns.command, $name)
    $W.WriteElementString('verb', $ns.command, $Command.Verb)
    $W.WriteElementString('noun', $ns.command, $Command.Noun)
    Write-Description $W $synopsis
    $W.WriteEndElement()
    Write-Description $W $description

    $W.WriteStartElement('syntax', $ns.command)
    foreach ($set in $Command.ParameterSets) {
        $W.WriteStartElement('syntaxItem', $ns.command)
        $W.WriteElementString('name', $ns.maml, $name)
        $inSet = $set.Parameters | Where-Object { $_.Name -notin $CommonParameters } |
            Sort-Object @{ Expression = { if ($_.Position -ge 0) { $_.Position } else { [int]::MaxValue } } }, @{ Expression = { -not $_.IsMandatory } }
        foreach ($sp in $inSet) {
            $p = $params | Where-Object { $_.Facts.Name -eq $sp.Name } | Select-Object -First 1
            $position = if ($sp.Position -ge 0) { [string]$sp.Position } else { 'named' }
            Write-Parameter $W $p.Facts $p.Paras $position $sp.IsMandatory (Get-PipelineText $sp)
        }
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('parameters', $ns.command)
    foreach ($p in $params) { Write-Parameter $W $p.Facts $p.Paras $p.Facts.Position $p.Facts.Required $p.Facts.Pipeline }
    $W.WriteEndElement()

    $W.WriteStartElement('inputTypes', $ns.command)
    $inputsToWrite = if ($inputItems) { $inputItems } else { @([pscustomobject]@{ Name = 'None'; Lines = @() }) }
    foreach ($it in $inputsToWrite) {
        $W.WriteStartElement('inputType', $ns.command)
        $W.WriteStartElement('type', $ns.dev); $W.WriteElementString('name', $ns.maml, $it.Name.Trim('`')); $W.WriteEndElement()
        Write-Description $W (Get-Paragraphs $it.Lines)
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('returnValues', $ns.command)
    foreach ($it in $outputItems) {
        $W.WriteStartElement('returnValue', $ns.command)
        $W.WriteStartElement('type', $ns.dev); $W.WriteElementString('name', $ns.maml, $it.Name.Trim('`')); $W.WriteEndElement()
        Write-Description $W (Get-Paragraphs $it.Lines)
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $notes = @(if (& $section 'notes') { Get-Paragraphs (& $section 'notes').Lines })
    if ($notes) {
        $W.WriteStartElement('alertSet', $ns.maml); $W.WriteStartElement('alert', $ns.maml); Write-Paras $W $notes; $W.WriteEndElement(); $W.WriteEndElement()
    }

    $W.WriteStartElement('examples', $ns.command)
    foreach ($e in $examples) {
        $W.WriteStartElement('example', $ns.command)
        $W.WriteElementString('title', $ns.maml, "-------------------------- $($e.Title) --------------------------")
        $W.WriteElementString('code', $ns.dev, $e.Code)
        $W.WriteStartElement('remarks', $ns.dev); Write-Paras $W $e.Remarks; $W.WriteEndElement()
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $links = @((& $linesOf 'related links') | Where-Object { $_ -match '^\s*[-*]\s+(.+?)\s*$' } | ForEach-Object { $Matches[1] })
    $W.WriteStartElement('relatedLinks', $ns.command)
    foreach ($l in $links) {
        $text, $uri = if ($l -match '^\[(.+?)\]\((.*?)\)$') { $Matches[1], $Matches[2] } else { $l, '' }
        $W.WriteStartElement('navigationLink', $ns.maml); $W.WriteElementString('linkText', $ns.maml, $text); $W.WriteElementString('uri', $ns.maml, $uri); $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteEndElement() # command
}

# ---- main ----------------------------------------------------------------------------------------

$module = Import-Module (Resolve-Path -LiteralPath $ModulePath).Path -PassThru -Force
$cmdlets = @(Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name)
$problems = [Collections.Generic.List[string]]::new()
$culture = if ($OutputPath) { $OutputPath } else { Join-Path $module.ModuleBase 'en-US' }
New-Item -ItemType Directory -Force -Path $culture | Out-Null
$outFile = Join-Path $culture 'GridArtifacts.dll-Help.xml'

$files = @(Get-ChildItem -LiteralPath $SourcePath -Filter '*-*.md' -File)
foreach ($f in $files) {
    if ($f.BaseName -notin $cmdlets.Name) { Write-Warning "$($f.Name) documents '$($f.BaseName)', which the module does not export; it is not built into the help." }
}

$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$writer = [System.Xml.XmlWriter]::Create($outFile, $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', $ns.msh)
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($c in $cmdlets) {
        $file = Join-Path $SourcePath "$($c.Name).md"
        if (-not (Test-Path -LiteralPath $file)) { $problems.Add("$($c.Name) has no help: write $file."); continue }
        Write-CommandHelp $writer $c (Read-HelpMarkdown $file) (Split-Path $file -Leaf) $problems
    }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally { $writer.Dispose() }

# The about topic is plain text already: copied as it is.
Get-ChildItem -LiteralPath $SourcePath -Filter 'about_*.help.txt' -File | Copy-Item -Destination $culture

if ($problems.Count) {
    Remove-Item -LiteralPath $outFile -ErrorAction Ignore
    foreach ($p in $problems) { Write-Host "  $p" -ForegroundColor Red }
    throw "The help is incomplete: $($problems.Count) problem(s), listed above."

}
Write-Host "Built help for $($cmdlets.Count) cmdlets at $outFile"
