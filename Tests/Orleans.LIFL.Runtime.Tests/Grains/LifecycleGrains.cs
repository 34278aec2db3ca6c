using Orleans.LIFL.Runtime.Tests.Infrastructure;

namespace Orleans.LIFL.Runtime.Tests.Grains;

public interface ILifecycleGrain : IGrainWithStringKey
{
    Task<Guid> ActivationId();

    Task<string> Silo();

    Task Deactivate();

    Task DelayDeactivation(TimeSpan span);
}

/// <summary>Records activations and deactivations in <see cref="Signals"/> under its key.</summary>
public class LifecycleGrain : Grain, ILifecycleGrain
{
    private readonly Guid _activationId = Guid.NewGuid();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var n = Signals.Increment($"{key}/activations");
        Signals.Set($"{key}/activated#{n}");
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var n = Signals.Increment($"{key}/deactivations");
        Signals.Set($"{key}/deactivated#{n}");
        Signals.Set($"{key}/deactivated/{reason.ReasonCode}");
        return Task.CompletedTask;
    }

    public Task<Guid> ActivationId() => Task.FromResult(_activationId);

    public Task<string> Silo() => Task.FromResult(GrainContext.Silo.ToString());

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    Task ILifecycleGrain.DelayDeactivation(TimeSpan span)
    {
        DelayDeactivation(span);
        return Task.CompletedTask;
    }
}

public interface ILocalLifecycleGrain : ILifecycleGrain;

[Orleans.LIFL.Placement.PreferLocalPlacement]
public sealed class LocalLifecycleGrain : LifecycleGrain, ILocalLifecycleGrain;

public interface ILongLivedGrain : ILifecycleGrain;

[CollectionAgeLimit(Minutes = 60)]
public sealed class LongLivedGrain : LifecycleGrain, ILongLivedGrain;

public interface IConfiguredAgeGrain : ILifecycleGrain;

/// <summary>Its collection age comes from GrainCollectionOptions.ClassSpecificCollectionAge in the tests.</summary>
public sealed class ConfiguredAgeGrain : LifecycleGrain, IConfiguredAgeGrain;

public interface IPinnedGrain : ILifecycleGrain;

[KeepAlive]
public sealed class PinnedGrain : LifecycleGrain, IPinnedGrain;

public interface IFailingActivationGrain : IGrainWithStringKey
{
    Task<int> Attempts();
}

/// <summary>OnActivateAsync throws on the first attempt for keys starting "once-", always for keys starting "always-".</summary>
public sealed class FailingActivationGrain : Grain, IFailingActivationGrain
{
    private int _attempt;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        _attempt = Signals.Increment($"{key}/attempts");
        if (key.StartsWith("always-", StringComparison.Ordinal) || (key.StartsWith("once-", StringComparison.Ordinal) && _attempt == 1))
        {
            throw new InvalidOperationException($"activation of {key} refused (attempt {_attempt})");
        }

        return Task.CompletedTask;
    }

    public Task<int> Attempts() => Task.FromResult(_attempt);
}
