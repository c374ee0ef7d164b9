using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using GridArtifacts.Core.Stores;

namespace GridArtifacts;

/// <summary>Tab completion of run names from the store the command would use.</summary>
public sealed class RunNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        try
        {
            var store = fakeBoundParameters["Store"] as string;
            var info = StoreSettings.Resolve(store);
            if (info.Kind == GridArtifacts.Model.GridStoreKind.FileSystem && !System.IO.Path.IsPathRooted(info.Location)) return Array.Empty<CompletionResult>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            var names = StoreSettings.Open(info.Location).ListRunNamesAsync(cts.Token).GetAwaiter().GetResult();
            var word = wordToComplete.Trim('\'', '"');
            var pattern = WildcardPattern.Get(word + "*", WildcardOptions.IgnoreCase);
            return names.Where(pattern.IsMatch).Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n)).ToList();
        }
        catch (Exception)
        {
            // Completion must never throw at the user; no store, no suggestions.
            return Array.Empty<CompletionResult>();
        }
    }
}
