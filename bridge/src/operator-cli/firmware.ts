/** `flotilla firmware upload|list|release`: a product's firmware versions and their release. */
import type { Firmware, Release } from './api-types.js';
import { intOption, numberOption, stringOption, versionOption } from './args.js';
import { UsageError, type Command } from './command.js';
import { readableFile } from './files.js';
import { paths } from './paths.js';
import { rolloutLine } from './progress.js';
import { bytes, table } from './table.js';

const product = { type: 'string', value: 'P', required: true, help: 'the product, by id or slug' } as const;

export const firmwareUpload: Command = {
  name: 'firmware upload',
  summary: 'Upload a firmware version to a product (a FLIM image, or a JS bundle that the bridge wraps).',
  args: ['FILE'],
  options: {
    product,
    version: { type: 'string', value: 'N', required: true, help: 'the version (a FLIM image must say the same; a bundle takes it)' },
    title: { type: 'string', value: 'T', help: 'a title (default "Version N")' },
    description: { type: 'string', value: 'D', help: 'a description' },
  },
  async run(ctx, v, [file]) {
    const version = versionOption(v, 'version', this)!;
    await readableFile(file);
    const p = stringOption(v, 'product')!;
    const f = await ctx.api.upload<Firmware>('POST', paths.firmware(p), {
      file,
      fields: { version: String(version), title: stringOption(v, 'title'), description: stringOption(v, 'description') },
    });
    if (ctx.json) ctx.print(f);
    else ctx.out(`uploaded version ${f.version} "${f.title}" to product ${p}: ${bytes(f.size)}, sha256 ${f.sha256}`);
    return 0;
  },
};

export const firmwareList: Command = {
  name: 'firmware list',
  summary: "List a product's firmware versions.",
  args: [],
  options: { product },
  async run(ctx, v) {
    const p = stringOption(v, 'product')!;
    const list = await ctx.api.get<Firmware[]>(paths.firmware(p));
    if (ctx.json) ctx.print(list);
    else if (list.length === 0) ctx.out(`no firmware in product ${p}`);
    else {
      const rows = list.map((f) => [
        String(f.version), f.title, bytes(f.size), f.released ? 'yes' : 'no', f.product_default ? 'yes' : '', f.groups.join(','), String(f.device_count), f.uploaded_on,
      ]);
      ctx.io.stdout.write(table(['VERSION', 'TITLE', 'SIZE', 'RELEASED', 'DEFAULT', 'GROUPS', 'DEVICES', 'UPLOADED'], rows));
    }
    return 0;
  },
};

export const firmwareRelease: Command = {
  name: 'firmware release',
  summary: 'Release a version as the product default and/or to groups; starts a rollout.',
  args: [],
  options: {
    product,
    version: { type: 'string', value: 'N', required: true, help: 'the version to release' },
    default: { type: 'boolean', help: 'make it the product default (every device not in a released group)' },
    groups: { type: 'string', value: 'a,b', help: 'release it to these device groups' },
    concurrency: { type: 'string', value: 'C', help: 'updates in flight at most (bridge default 50)' },
    'batch-size': { type: 'string', value: 'B', help: 'devices per batch, 0 for no batches (bridge default 0)' },
    'failure-threshold': { type: 'string', value: 'PCT', help: 'pause when more than PCT percent of updates fail, 0.1 to 100 (bridge default 10)' },
    'min-attempts': { type: 'string', value: 'M', help: '...once this many updates have finished (bridge default 20)' },
  },
  notes:
    'A release says exactly where the version goes: the groups given, and the product default only with --default. ' +
    'Where it was released before and is not named now, it is withdrawn, and those devices go to what is released for them then (the output says so). ' +
    'Watch the rollout with `flotilla rollout status --product P --watch`.',
  async run(ctx, v) {
    const version = versionOption(v, 'version', this)!;
    const groups = (stringOption(v, 'groups') ?? '').split(',').map((g) => g.trim()).filter(Boolean);
    const asDefault = v.default === true;
    if (!asDefault && groups.length === 0) throw new UsageError('give --default, --groups or both', this);
    const p = stringOption(v, 'product')!;
    // Always a percentage here, sent as a fraction: the bridge reads 1 as 100% (a fraction) but 2 as 2%.
    const pct = numberOption(v, 'failure-threshold', this, 100);
    // Where the version is released now: what this release withdraws it from is said below.
    const before = (await ctx.api.get<Firmware[]>(paths.firmware(p))).find((f) => f.version === version);
    // Unset settings are left out, so the bridge's defaults apply.
    const r = await ctx.api.send<Release>('PUT', paths.release(p), {
      version,
      product_default: asDefault,
      groups,
      concurrency: intOption(v, 'concurrency', 1, this),
      batch_size: intOption(v, 'batch-size', 0, this),
      failure_threshold: pct,
      min_attempts: intOption(v, 'min-attempts', 1, this),
    });
    if (ctx.json) {
      ctx.print(r);
      return 0;
    }
    const to = [asDefault ? 'as the product default' : '', groups.length > 0 ? `to groups ${groups.join(', ')}` : ''].filter(Boolean).join(' and ');
    const o = r.rollout;
    ctx.out(`released version ${r.version} of product ${p} ${to}: rollout ${o.id}`);
    const withdrawn = [before?.product_default && !asDefault ? 'the product default' : '', ...(before?.groups ?? []).filter((g) => !groups.includes(g)).map((g) => 'group ' + g)].filter(Boolean);
    if (withdrawn.length > 0) ctx.out(`  withdrawn from ${withdrawn.join(', ')}: those devices go to what is released for them now`);
    ctx.out(`  concurrency ${o.concurrency}, batch size ${o.batch_size || 'none'}, pauses above ${o.failure_threshold}% failed after ${o.min_attempts} updates`);
    ctx.out(rolloutLine(o));
    return 0;
  },
};
