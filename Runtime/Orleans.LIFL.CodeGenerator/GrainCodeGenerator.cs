using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Orleans.LIFL.CodeGenerator;

/// <summary>
/// Generates, at compile time, what the runtime would otherwise need reflection for: a typed proxy and one request
/// class per method for every grain interface, a factory for every grain class (constructor dependencies resolved),
/// and a deep copier for every [GenerateSerializer] type. Everything is registered through one provider per assembly.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class GrainCodeGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var interfaces = context.SyntaxProvider.CreateSyntaxProvider(
                static (node, _) => node is InterfaceDeclarationSyntax { BaseList: not null },
                static (ctx, ct) => ctx.SemanticModel.GetDeclaredSymbol(ctx.Node, ct) is INamedTypeSymbol symbol ? ModelBuilder.AnalyzeInterface(symbol) : null)
            .Where(static a => a is not null)
            .Collect();

        var grainClasses = context.SyntaxProvider.CreateSyntaxProvider(
                static (node, _) => node is ClassDeclarationSyntax { BaseList: not null },
                static (ctx, ct) => ctx.SemanticModel.GetDeclaredSymbol(ctx.Node, ct) is INamedTypeSymbol symbol ? ModelBuilder.AnalyzeGrainClass(symbol) : null)
            .Where(static a => a is not null)
            .Collect();

        var serializables = context.SyntaxProvider.ForAttributeWithMetadataName(
                "Orleans.LIFL.Serialization.GenerateSerializerAttribute",
                static (node, _) => node is TypeDeclarationSyntax,
                static (ctx, _) => ModelBuilder.AnalyzeSerializable((INamedTypeSymbol)ctx.TargetSymbol))
            .Collect();

        var assemblyName = context.CompilationProvider.Select(static (c, _) => c.AssemblyName ?? "Assembly");
        var all = assemblyName.Combine(interfaces).Combine(grainClasses).Combine(serializables);
        context.RegisterSourceOutput(all, static (spc, input) =>
        {
            var (((assembly, interfaceResults), classResults), serializableResults) = input;
            Report(spc, interfaceResults.Select(r => r!));
            Report(spc, classResults.Select(r => r!));
            Report(spc, serializableResults);

            var interfaceModels = Distinct(interfaceResults!.Select(r => r!.Model), m => m.FullName);
            var classModels = Distinct(classResults!.Select(r => r!.Model), m => m.FullName);
            var serializableModels = Distinct(serializableResults.Select(r => r.Model), m => m.FullName);
            if (interfaceModels.Count == 0 && classModels.Count == 0 && serializableModels.Count == 0)
            {
                return;
            }

            spc.AddSource("Orleans.LIFL.g.cs", Emitter.Emit(assembly, interfaceModels, classModels, serializableModels));
        });
    }

    private static void Report<T>(SourceProductionContext context, IEnumerable<Analysis<T>> results)
        where T : class, System.IEquatable<T>
    {
        foreach (var result in results)
        {
            foreach (var diagnostic in result.Diagnostics)
            {
                context.ReportDiagnostic(diagnostic.ToDiagnostic());
            }
        }
    }

    /// <summary>Partial declarations yield one result per part; keep one model per type, in a stable order.</summary>
    private static List<T> Distinct<T>(IEnumerable<T?> models, System.Func<T, string> key)
        where T : class =>
        models.Where(m => m is not null).Select(m => m!).GroupBy(key).Select(g => g.First()).OrderBy(key, System.StringComparer.Ordinal).ToList();
}
