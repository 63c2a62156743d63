// ALBEF annotation files: what re_eval_dataset builds from them, the malformed files it would crash
// on or misread (refused here with the entry and field named), and image paths held to their root.

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  parseAnnotations,
  readAnnotations,
  realImagePath,
  resolveImagePath,
  resolveImagePaths,
} from '../../src/retrieval/annotations.js';

const bad = (t: Test, json: string, match: RegExp, index?: number, param?: string) =>
  t.throws(
    () => parseAnnotations(json, { source: 'ann.json' }),
    { name: 'AnnotationsError', code: 'invalid_annotations', index, param, message: match },
    match.source,
  );

t.test('text ids run across images in file order; captions through pre_caption', async (t) => {
  const a = parseAnnotations(
    JSON.stringify([
      { image: 'a/1.jpg', caption: ['A Dog, running!', 'two  cats'], image_id: 7 },
      { image: '2.png', caption: 'One caption as a string.' },
      { image: 'b/../3.png', caption: ['x-y/z', 'w', 'v'] },
    ]),
  );
  t.same(a.images, ['a/1.jpg', '2.png', 'b/../3.png']);
  t.same(a.texts, ['a dog running', 'two cats', 'one caption as a string', 'x y z', 'w', 'v']);
  t.same(a.rawTexts, ['A Dog, running!', 'two  cats', 'One caption as a string.', 'x-y/z', 'w', 'v']);
  t.same(a.txt2img, [0, 0, 1, 2, 2, 2]);
  t.same(a.img2txt, [[0, 1], [2], [3, 4, 5]]);
  const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
  t.equal(parseAnnotations(JSON.stringify([{ image: 'x', caption: [long] }])).texts[0]!.split(' ').length, 30);
  t.equal(
    parseAnnotations(JSON.stringify([{ image: 'x', caption: [long] }]), { maxWords: 5 }).texts[0],
    'w0 w1 w2 w3 w4',
  );
  t.same(
    parseAnnotations('\uFEFF[{"image":"x","caption":["a","a"]}]').texts,
    ['a', 'a'],
    'BOM; duplicate captions kept',
  );
});

t.test('malformed files are refused with the entry and field named', async (t) => {
  bad(t, '{"images": [], "annotations": []}', /must be a JSON list.*COCO captions file/);
  bad(t, '"x"', /must be a JSON list.*not string/);
  bad(t, '[{"image": "a", "caption": ["x"]},]', /ann\.json is not valid JSON/);
  bad(t, '[]', /holds no entries/);
  bad(t, '[{"image": "a", "caption": ["x"]}, null]', /entry 1 must be an object.*not null/, 1);
  bad(t, '[["a", "x"]]', /entry 0 must be an object.*not a list/, 0);
  bad(t, '[{"caption": ["x"]}]', /entry 0 has no "image"/, 0, 'image');
  bad(t, '[{"image": 3, "caption": ["x"]}]', /"image" must be a string.*not number/, 0, 'image');
  bad(t, '[{"image": "", "caption": ["x"]}]', /"image" "" is empty/, 0, 'image');
  bad(t, '[{"image": "a.jpg"}]', /entry 0 \("a\.jpg"\) has no "caption"/, 0, 'caption');
  bad(
    t,
    '[{"image": "a.jpg", "caption": {"en": "x"}}]',
    /"caption" must be a list of strings.*not object/,
    0,
    'caption',
  );
  bad(t, '[{"image": "a.jpg", "caption": []}]', /"caption" is an empty list/, 0, 'caption');
  bad(t, '[{"image": "a.jpg", "caption": ["x", 5]}]', /caption\[1\] must be a string, not number/, 0, 'caption');
  bad(t, '[{"image": "a.jpg", "caption": ["x", null]}]', /caption\[1\] must be a string, not null/, 0, 'caption');
  bad(
    t,
    '[{"image": "a.jpg", "caption": ["x", "?!..."]}]',
    /caption\[1\] "\?!\.\.\." is empty once cleaned up/,
    0,
    'caption',
  );
  bad(
    t,
    '[{"image": "a.jpg", "caption": ["x"]}, {"image": "./a.jpg", "caption": ["y"]}]',
    /is already entry 0/,
    1,
    'image',
  );
  bad(
    t,
    '[{"image": "d/a.jpg", "caption": ["x"]}, {"image": "d//a.jpg", "caption": ["y"]}]',
    /already entry 0/,
    1,
    'image',
  );
});

t.test('image paths that leave the root are refused in the file', async (t) => {
  const one = (image: string) => JSON.stringify([{ image, caption: ['x'] }]);
  bad(t, one('/etc/passwd'), /"\/etc\/passwd" is absolute/, 0, 'image');
  bad(t, one('../secret.jpg'), /leaves the image root/, 0, 'image');
  bad(t, one('a/../../secret.jpg'), /leaves the image root/, 0, 'image');
  bad(t, one('..'), /leaves the image root/, 0, 'image');
  bad(t, one('a/..'), /names the image root itself/, 0, 'image');
  bad(t, one('a\u0000.jpg'), /NUL/, 0, 'image');
  t.same(parseAnnotations(one('..a/b..jpg')).images, ['..a/b..jpg'], 'names that merely start with dots are fine');
});

t.test('resolving against a root', async (t) => {
  t.equal(resolveImagePath('/data/root', 'a/b.jpg'), '/data/root/a/b.jpg');
  t.equal(resolveImagePath('/data/root/', './a/../b.jpg'), '/data/root/b.jpg');
  t.same(resolveImagePaths('/r', ['x.png', 'y/z.png']), ['/r/x.png', '/r/y/z.png']);
  const out = { name: 'PathOutsideRootError', code: 'path_outside_root' };
  t.throws(() => resolveImagePath('/data/root', '../root2/x.jpg'), out);
  t.throws(() => resolveImagePath('/data/root', '/data/root/x.jpg'), out, 'absolute even when inside');
  t.throws(() => resolveImagePaths('/r', ['ok.png', '../no.png']), { ...out, index: 1 });
});

t.test('files on disk: reading, and symbolic links out of the root', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'albef-ann-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(root, 'sub', 'in.jpg'), 'x');
  await writeFile(join(dir, 'outside.jpg'), 'x');
  await symlink(join(dir, 'outside.jpg'), join(root, 'escape.jpg'));
  await symlink(join(root, 'sub'), join(root, 'alias'));
  await writeFile(join(dir, 'ann.json'), JSON.stringify([{ image: 'sub/in.jpg', caption: ['a'] }]));

  t.same((await readAnnotations(join(dir, 'ann.json'))).images, ['sub/in.jpg']);
  await t.rejects(readAnnotations(join(dir, 'missing.json')), {
    code: 'invalid_annotations',
    message: /cannot read the annotation file .*missing\.json/,
  });
  await writeFile(join(dir, 'broken.json'), '[{"image": "a", "caption": [1]}]');
  await t.rejects(readAnnotations(join(dir, 'broken.json')), { message: /broken\.json: entry 0/ }, 'names the file');

  t.equal(await realImagePath(root, 'sub/in.jpg'), join(root, 'sub', 'in.jpg'));
  t.equal(await realImagePath(root, 'alias/in.jpg'), join(root, 'sub', 'in.jpg'), 'a link inside the root is fine');
  await t.rejects(realImagePath(root, 'escape.jpg', 3), { code: 'path_outside_root', index: 3, message: /is a link/ });
  await t.rejects(realImagePath(root, 'nothing.jpg'), { code: 'ENOENT' });
});
