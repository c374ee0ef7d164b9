using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace GridArtifacts;

/// <summary>
/// Keeps the module's own dependencies out of PowerShell's default load context: the cmdlet assembly
/// loads in the default context, and GridArtifacts.Core with everything it depends on loads from the
/// module's <c>deps</c> folder into a context of its own, so another module's copies of the same
/// libraries (in other versions) break neither module.
/// </summary>
public sealed class ModuleInit : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    internal const string DependencyFolder = "deps";
    internal const string EngineAssembly = "GridArtifacts.Core";
    internal const string ModelAssembly = "GridArtifacts.Model";

    private static readonly string ModulePath = Path.GetDirectoryName(typeof(ModuleInit).Assembly.Location)!;
    private static readonly string DepsPath = Path.Combine(ModulePath, DependencyFolder);

    internal static readonly GridLoadContext Context = new(DepsPath);

    public void OnImport() => AssemblyLoadContext.Default.Resolving += ResolveEngine;

    public void OnRemove(PSModuleInfo psModuleInfo) => AssemblyLoadContext.Default.Resolving -= ResolveEngine;

    /// <summary>
    /// The engine goes to the module's context; the model (shared by both sides) to the default
    /// context, from the module folder, so that one copy of each model type exists.
    /// </summary>
    private static Assembly? ResolveEngine(AssemblyLoadContext defaultContext, AssemblyName name)
    {
        if (name.Name == EngineAssembly && File.Exists(Path.Combine(DepsPath, EngineAssembly + ".dll")))
        {
            return Context.LoadFromAssemblyName(name);
        }
        var model = Path.Combine(ModulePath, ModelAssembly + ".dll");
        if (name.Name == ModelAssembly && File.Exists(model))
        {
            return defaultContext.LoadFromAssemblyPath(model);
        }
        return null;
    }
}

/// <summary>Loads the engine and its dependencies from the module's deps folder; anything else comes from the default context.</summary>
internal sealed class GridLoadContext : AssemblyLoadContext
{
    private readonly string _folder;

    public GridLoadContext(string folder) : base("GridArtifacts", isCollectible: false) => _folder = folder;

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        // The shared model always comes from the default context.
        if (assemblyName.Name == ModuleInit.ModelAssembly) return null;
        var candidate = Path.Combine(_folder, assemblyName.Name + ".dll");
        return File.Exists(candidate) ? LoadFromAssemblyPath(candidate) : null;
    }
}
