/**
 * Row hashes and payloads pinned as the code computed them before issue 15 point 3 (per-row CPU) changed
 * the worker path: a snapshot stores them, so any drift would make every unchanged row of every source
 * look changed (and be re-sent) after an upgrade. The cases are in row-hash-cases.ts. These pins were
 * computed once, before the change; never regenerate them to make this test pass.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../reconciler/core/digest.ts';
import { normalizerOutcomes, segmentOutcomes } from './row-hash-cases.ts';

const SEGMENT_PINS = [
  "0 2 100000000 55ed0e1ae8bd6a008aa001d1248fc697 1735711200000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"person.0@example.com\",\"plan\":\"free\",\"plan_updated_at\":1735707600,\"order_count\":0,\"lifetime_value\":0,\"country\":\"US\",\"accepts_marketing\":false,\"note\":\"hello\"}}",
  "1 3 2754435761 d34849aed23ce789d6939fa1100aef2d 1735797601000 blocked=country held= erased=note {\"records\":\"person\",\"attributes\":{\"email\":\"person.1@example.com\",\"plan\":\"starter\",\"plan_updated_at\":1735794001,\"order_count\":1,\"lifetime_value\":1.37,\"accepts_marketing\":true,\"note\":null}}",
  "0 4 3000000001 4ea155166d7411198c132e06b38adb82 1793511000000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"mixed@example.com\",\"plan\":\"pro\",\"plan_updated_at\":1772955000,\"order_count\":22,\"lifetime_value\":13659.01,\"country\":\"GB\",\"accepts_marketing\":true,\"note\":\"x\"}}",
  "0 5 3000000002 b570a9c7566b681b5cff14c5bc952b8b 1772955000000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"a@b.co\",\"plan\":\"enterprise\",\"plan_updated_at\":1772955000,\"order_count\":1000,\"lifetime_value\":0,\"country\":\"DE\",\"accepts_marketing\":true,\"note\":\"y\"}}",
  "0 6 3000000003 b6fba7ffe63c2a3585864e2ca54fd048 1767225600000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"c@d.co\",\"plan\":\"free\",\"plan_updated_at\":1782878399,\"order_count\":7,\"lifetime_value\":5.5,\"country\":\"FR\",\"accepts_marketing\":false,\"note\":\"z\"}}",
  "0 7 3000000004 002813738d54bcd838ef90c213efaf2b 1751610600000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"e@f.co\",\"plan\":\"starter\",\"plan_updated_at\":1751601600,\"order_count\":3,\"lifetime_value\":0.5,\"country\":\"C,A\",\"accepts_marketing\":true,\"note\":\"say \\\"hi\\\"\"}}",
  "0 8 3000000005 b59747ce5416d7fd654e978d17212684 1767225599000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"g@h.co\",\"plan\":\"pro\",\"plan_updated_at\":1767225599,\"order_count\":4,\"lifetime_value\":1e-7,\"country\":\"AU\\nNZ\",\"accepts_marketing\":false,\"note\":\"tab\\there \\u0001 ctrl \\\\ back\"}}",
  "0 10 3000000006 962f7fe78821a8f172944ca4e2cc4b89 1735707600000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"i@j.co\",\"plan\":\"free\",\"plan_updated_at\":1735707600,\"order_count\":9007199254740992,\"lifetime_value\":1.2345678901234569e+23,\"country\":\"NL\",\"accepts_marketing\":false,\"note\":\"émoji 🎉   line\"}}",
  "1 11 3000000007 e27ed0ace7a5ec3720a6fd1e1e14e45e null blocked=plan_updated_at+order_count+lifetime_value+country+accepts_marketing held= erased=note {\"records\":\"person\",\"attributes\":{\"email\":\"k@l.co\",\"plan\":\"free\",\"note\":null}}",
  "0 12 100000000 3dca8998eeac13be762284d28047e3eb 1735714800000 blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"person.0@example.com\",\"plan\":\"pro\",\"plan_updated_at\":1735707600,\"order_count\":5,\"lifetime_value\":0,\"country\":\"US\",\"accepts_marketing\":false,\"note\":\"hello\"}}",
  "rejected data/people.csv:13 type_mismatch plan plan",
  "rejected data/people.csv:14 value_invalid_email email email",
  "rejected data/people.csv:15 row_malformed  ",
  "notes Column \"plan_changed_at\" falls in the daylight-saving gap of America/New_York (that local time never happened); shifted forward by 60 minutes (UTC offset -04:00). | Column \"updated_at\" is ambiguous in America/New_York (the clocks went back and that local time happened twice); used the earlier instant (UTC offset -04:00).",
];

const NORMALIZER_PINS = [
  "42 abc0e89d58f71e9ca2e66331a4f43d02 1735693200000 blocked= held= erased=note {\"records\":\"person\",\"attributes\":{\"email\":\"x@example.com\",\"plan\":\"free\",\"plan_updated_at\":1735689600,\"order_count\":3,\"lifetime_value\":1.5,\"country\":\"US\",\"accepts_marketing\":true,\"note\":null}}",
  "43 b9249ee4727be62a90cc9407ce2a9b9e 1735707600000 blocked=plan+country held=plan_updated_at erased=note {\"records\":\"person\",\"attributes\":{\"email\":\"q@r.io\",\"order_count\":0,\"lifetime_value\":0,\"accepts_marketing\":false,\"note\":null}}",
  "c-44 fa1873967a904a8985c201af9f4aa93a null blocked= held=plan_updated_at erased= {\"records\":\"person\",\"attributes\":{\"email\":\"a@b.io\",\"order_count\":1}}",
  "c-45 7b2dfb43109459fea57be9af51c49dae null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"a@b.io\",\"country\":\"NO\",\"note\":\"only\"}}",
  "42 abc0e89d58f71e9ca2e66331a4f43d02 1735693200000 blocked= held= erased=note {\"records\":\"person\",\"attributes\":{\"email\":\"x@example.com\",\"plan\":\"free\",\"plan_updated_at\":1735689600,\"order_count\":3,\"lifetime_value\":1.5,\"country\":\"US\",\"accepts_marketing\":true,\"note\":null}}",
  "43 56155ef33fbba11c4a24cbe0629832e6 1735707600000 blocked=plan+country held=plan_updated_at erased=note {\"records\":\"person\",\"attributes\":{\"email\":\"q@r.io\",\"plan_updated_at\":1700000000,\"order_count\":0,\"lifetime_value\":0,\"accepts_marketing\":false,\"plan\":\"pro\",\"country\":\"SE\",\"note\":null},\"kept\":[\"country\",\"plan\",\"plan_updated_at\"]}",
  "c-44 38226fd36bb059be18300898a167eb9d null blocked= held=plan_updated_at erased= {\"records\":\"person\",\"attributes\":{\"email\":\"a@b.io\",\"plan_updated_at\":1700000000,\"order_count\":1,\"plan\":\"pro\",\"country\":\"SE\",\"note\":\"kept?\"},\"kept\":[\"country\",\"note\",\"plan\",\"plan_updated_at\"]}",
  "c-45 82deb8adb619fbecdeb3e3a533c79bf8 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"a@b.io\",\"country\":\"NO\",\"note\":\"only\",\"plan\":\"pro\",\"plan_updated_at\":1700000000},\"kept\":[\"plan\",\"plan_updated_at\"]}",
  "s0-1 c548c98d3190eecba02d10ac97ae2885 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"order_count\":2,\"lifetime_value\":3.25,\"country\":\"IT\",\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s0-4 56a9dfadc3174a3c5be35156792c4763 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"plan\":\"pro\",\"order_count\":2,\"lifetime_value\":3.25,\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s1-2 3135765bef3427a660d86453e30f18d8 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"lifetime_value\":3.25,\"country\":\"IT\",\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s1-5 f8630829c970eb51420fb0782a96f8d3 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"order_count\":2,\"lifetime_value\":3.25,\"country\":\"IT\",\"note\":\"n\"}}",
  "s2-3 7713d704af7a20952ac75adc5ae57ed6 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"country\":\"IT\",\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s2-6 47434df433b902af04e25acb29a4903c null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"lifetime_value\":3.25,\"country\":\"IT\",\"accepts_marketing\":true}}",
  "s3-4 f8f8c67a271a0a249c09f54b6e7aa0dd null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"order_count\":2,\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s4-5 6a11ae47816c82211b9e8efea0a7ed18 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"order_count\":2,\"lifetime_value\":3.25,\"note\":\"n\"}}",
  "s5-6 9d88cad27b0e8163f94f1ccdd970d1c4 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"order_count\":2,\"lifetime_value\":3.25,\"country\":\"IT\"}}",
  "s0-1 c548c98d3190eecba02d10ac97ae2885 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"order_count\":2,\"lifetime_value\":3.25,\"country\":\"IT\",\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s0-4 56a9dfadc3174a3c5be35156792c4763 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"plan\":\"pro\",\"order_count\":2,\"lifetime_value\":3.25,\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s1-2 3135765bef3427a660d86453e30f18d8 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"lifetime_value\":3.25,\"country\":\"IT\",\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s1-5 f8630829c970eb51420fb0782a96f8d3 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"order_count\":2,\"lifetime_value\":3.25,\"country\":\"IT\",\"note\":\"n\"}}",
  "s2-3 7713d704af7a20952ac75adc5ae57ed6 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"country\":\"IT\",\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s2-6 47434df433b902af04e25acb29a4903c null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"lifetime_value\":3.25,\"country\":\"IT\",\"accepts_marketing\":true}}",
  "s3-4 f8f8c67a271a0a249c09f54b6e7aa0dd null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"order_count\":2,\"accepts_marketing\":true,\"note\":\"n\"}}",
  "s4-5 6a11ae47816c82211b9e8efea0a7ed18 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"order_count\":2,\"lifetime_value\":3.25,\"note\":\"n\"}}",
  "s5-6 9d88cad27b0e8163f94f1ccdd970d1c4 null blocked= held= erased= {\"records\":\"person\",\"attributes\":{\"email\":\"z@zz.io\",\"plan\":\"pro\",\"order_count\":2,\"lifetime_value\":3.25,\"country\":\"IT\"}}",
  "43 d20a2d469330322948af189b32ace9dd 1735707600000 blocked= held= erased=plan+country+note {\"records\":\"person\",\"attributes\":{\"email\":\"q@r.io\",\"plan_updated_at\":1735707600,\"order_count\":0,\"lifetime_value\":0,\"accepts_marketing\":false,\"plan\":null,\"country\":null,\"note\":null}}",
  "s1 3045f1a9e4af672320d8b9f7155200c1 null blocked= held= erased= {\"records\":\"object\",\"attributes\":{\"tier\":\"gold\",\"phone\":\"+14155550100\",\"note\":\"a \\\"quoted\\\" note\"},\"object\":{\"type\":\"3\",\"id\":\"s1\",\"person\":\"42\"}}",
  "7 6ca3ae71084cb7ec8a0045f559754fe2 null blocked= held= erased=note {\"records\":\"object\",\"attributes\":{\"tier\":\"silver\",\"phone\":\"+442079460958\",\"note\":null},\"object\":{\"type\":\"3\",\"id\":\"7\"}}",
  "01HPAKD8VB9BGCXPH4GS2AFJ5R 80fc7832c4b72a9df300d6b17c17e65e null blocked= held= erased= {\"records\":\"event\",\"attributes\":{\"order_count\":1,\"note\":\"first\"},\"event\":{\"name\":\"order_placed\",\"id\":\"01HPAKD8VB9BGCXPH4GS2AFJ5R\",\"timestamp\":1772955000,\"person\":\"42\"}} notes=Column \"placed_at\" falls in the daylight-saving gap of America/New_York (that local time never happened); shifted forward by 60 minutes (UTC offset -04:00).",
  "01HNZY1A2FJ2G4PYSTG1AR14Q4 3c981f09e43639861d6ed2e195674229 null blocked=order_count held= erased=note {\"records\":\"event\",\"attributes\":{\"note\":null},\"event\":{\"name\":\"order_placed\",\"id\":\"01HNZY1A2FJ2G4PYSTG1AR14Q4\",\"timestamp\":1767225600,\"person\":\"42\"}}",
];

describe('row hashes and payloads stay byte for byte what snapshots hold', () => {
  it.each([
    ['the segment worker of the parallel read (CSV text in)', segmentOutcomes, SEGMENT_PINS],
    ['the normaliser and prepareRow, with and without a previous payload', normalizerOutcomes, NORMALIZER_PINS],
  ])('through %s', (_path, outcomes, pins) => {
    expect(outcomes()).toEqual(pins);
  });

  it('each twice in one process (remembered shapes, offsets and instants give what a first read gives)', () => {
    segmentOutcomes();
    normalizerOutcomes();
    expect(segmentOutcomes()).toEqual(SEGMENT_PINS);
    expect(normalizerOutcomes()).toEqual(NORMALIZER_PINS);
  });

  it('every pinned hash is the sha256 of canonicalJson of the payload under the one-letter keys (the format)', () => {
    let checked = 0;
    for (const pin of [...SEGMENT_PINS, ...NORMALIZER_PINS]) {
      const m = /([0-9a-f]{32}) .* (\{.*\})(?: notes=.*)?$/s.exec(pin);
      if (!m) continue;
      const payload = JSON.parse(m[2]!);
      const form = payload.records === 'event' ? { e: payload.event } : { r: payload.records, a: payload.attributes, ...(payload.event ? { e: payload.event } : {}), ...(payload.object ? { o: payload.object } : {}) };
      checked++;
      expect(createHash('sha256').update(canonicalJson(form)).digest('hex').slice(0, 32), pin).toBe(m[1]);
    }
    expect(checked).toBe(SEGMENT_PINS.length + NORMALIZER_PINS.length - 4);
  });
});
