using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Tests.Grains;

public interface IEchoGrain : IGrainWithStringKey
{
    Task<string> Echo(string text);

    Task<string> WhereAmI();
}

public sealed class EchoGrain : Grain, IEchoGrain
{
    public Task<string> Echo(string text) => Task.FromResult($"{this.GetPrimaryKeyString()}:{text}");

    public Task<string> WhereAmI() => Task.FromResult(GrainContext.Silo.ToString());
}

public interface IGuidKeyGrain : IGrainWithGuidKey
{
    Task<Guid> Key();
}

public sealed class GuidKeyGrain : Grain, IGuidKeyGrain
{
    public Task<Guid> Key() => Task.FromResult(this.GetPrimaryKey());
}

public interface IIntegerKeyGrain : IGrainWithIntegerKey
{
    Task<long> Key();

    Task<string> Identity();
}

public sealed class IntegerKeyGrain : Grain, IIntegerKeyGrain
{
    public Task<long> Key() => Task.FromResult(this.GetPrimaryKeyLong());

    public Task<string> Identity() => Task.FromResult(IdentityString);
}

[GenerateSerializer]
public sealed class Payload
{
    [Id(0)]
    public List<int> Values { get; set; } = [];

    [Id(1)]
    public string Name { get; set; } = "";

    [Id(2)]
    public Payload? Child { get; set; }

    [Id(3)]
    public Dictionary<string, int[]> Table { get; set; } = [];
}

/// <summary>Holds what a grain received so tests in the same process can compare object identity.</summary>
public static class ReceivedObjects
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, object> Objects = new();

    public static void Put(string key, object value) => Objects[key] = value;

    public static object? Get(string key) => Objects.GetValueOrDefault(key);
}

public interface ICopyGrain : IGrainWithStringKey
{
    Task<Payload> Store(Payload payload);

    Task<Payload> Get();

    Task Keep(Payload payload);

    Task KeepImmutable(Immutable<Payload> payload);
}

public sealed class CopyGrain : Grain, ICopyGrain
{
    private Payload _stored = new();

    public Task<Payload> Store(Payload payload)
    {
        _stored = payload;
        return Task.FromResult(payload);
    }

    public Task<Payload> Get() => Task.FromResult(_stored);

    public Task Keep(Payload payload)
    {
        ReceivedObjects.Put(this.GetPrimaryKeyString(), payload);
        return Task.CompletedTask;
    }

    public Task KeepImmutable(Immutable<Payload> payload)
    {
        ReceivedObjects.Put(this.GetPrimaryKeyString(), payload.Value);
        return Task.CompletedTask;
    }
}

public sealed class CustomGrainException(string message) : Exception(message);

public interface IThrowingGrain : IGrainWithStringKey
{
    Task ThrowCustom(string message);

    Task<int> ThrowAfterAwait(string message);

    ValueTask ThrowBeforeAwait(string message);
}

public sealed class ThrowingGrain : Grain, IThrowingGrain
{
    public Task ThrowCustom(string message) => throw new CustomGrainException(message);

    public async Task<int> ThrowAfterAwait(string message)
    {
        await Task.Yield();
        throw new ArgumentOutOfRangeException(nameof(message), message);
    }

    public ValueTask ThrowBeforeAwait(string message) => throw new NotSupportedException(message);
}

public interface IGreetingService
{
    string Greet(string name);
}

public sealed class GreetingService : IGreetingService
{
    public string Greet(string name) => $"hello, {name}";
}

public interface IUnregisteredService;

public interface IDependencyGrain : IGrainWithStringKey
{
    Task<string> Greet();
}

public sealed class DependencyGrain(IGreetingService greetings, IGrainContext context) : Grain, IDependencyGrain
{
    public Task<string> Greet() => Task.FromResult(greetings.Greet(context.GrainId.Key));
}

public interface IMissingDependencyGrain : IGrainWithStringKey
{
    Task Ping();
}

public sealed class MissingDependencyGrain(IUnregisteredService service) : Grain, IMissingDependencyGrain
{
    public Task Ping() => Task.FromResult(service);
}

/// <summary>Two classes implement this interface, so GetGrain needs the class prefix.</summary>
public interface ISharedInterfaceGrain : IGrainWithStringKey
{
    Task<string> Name();
}

public sealed class FirstSharedGrain : Grain, ISharedInterfaceGrain
{
    public Task<string> Name() => Task.FromResult("first");
}

public sealed class SecondSharedGrain : Grain, ISharedInterfaceGrain
{
    public Task<string> Name() => Task.FromResult("second");
}

/// <summary>No class implements this one.</summary>
public interface IUnimplementedGrain : IGrainWithStringKey
{
    Task Ping();
}

public interface INotifier : IGrainObserver
{
    Task Notify(string message);
}

public interface INotifyingGrain : IGrainWithStringKey
{
    Task Send(INotifier notifier, string message);
}

public sealed class NotifyingGrain : Grain, INotifyingGrain
{
    public Task Send(INotifier notifier, string message) => notifier.Notify(message);
}

/// <summary>Calls that hold their turn until the test opens their gate, counting how many are held at once.</summary>
public interface IGatedGrain : IGrainWithStringKey
{
    /// <summary>Waits for the gate of this call; returns how many calls had entered and not been released when it entered.</summary>
    Task<int> Hold(string scope, int index);

    /// <summary>Returns how many gates the test had opened when this call ran.</summary>
    Task<int> Probe(string scope);
}

public sealed class GatedGrain : Grain, IGatedGrain
{
    public async Task<int> Hold(string scope, int index)
    {
        var entered = Signals.Increment($"{scope}/entered");
        var held = entered - Signals.Count($"{scope}/released");
        Signals.Set($"{scope}/entered/{index}");
        await Signals.WaitAsync($"{scope}/gate/{index}");
        return held;
    }

    public Task<int> Probe(string scope) => Task.FromResult(Signals.Count($"{scope}/released"));
}
