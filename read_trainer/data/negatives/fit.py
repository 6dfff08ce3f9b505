"""Which words fit together: the checks that keep a negative fluent, plausible and false.

The lexicon's classes say what a word *is* (an animal, a piece of furniture); these
tables say what it can *do* and *take*, so that an edit that is well formed but absurd
("a camera jumping up at the dog", "a blond sky", "a spoon filled with hot dogs") or
still true ("girl" -> "child", "kitchen" -> "room") is rejected. Such negatives are easy
to tell from the text alone: they teach a model grammar and plausibility, not grounding.

* **Kinds** refine a noun class into groups whose members can stand in for each other
  (a seat for a seat, a table for a table; never "table" -> "bed" after "sit at"). A kind
  also fixes the noun's *animacy* (person, animal, object, place, body) and *size band*,
  which the swap checks (``checks.roles_fit``) read with the verb and relation tables
  below: a swap moves a noun into another's roles, so "a dog chasing a cat" -> "a cat
  chasing a dog" is kept and "a man riding a horse" -> "a horse riding a man" is not.
* **Hypernyms and near-synonyms** ("boat"/"sailboat", "computer"/"laptop") are never
  replaced by each other: the negative could still describe the image.
* **Attribute fit**: colours, materials, patterns and shapes per kind (hair colours on
  hair, natural coat colours on animals, materials on objects).
* **Verb fit**: what kind of subject does a verb (posture, motion, handling) and what
  kind of object it takes, and which verbs mean nearly the same ("holding"/"carrying").
* **Relation fit**: which spatial relations make sense with a given landmark
  ("under a table", never "under the beach").

Every check answers from the lexicon alone; an unknown word fits nothing, so the
generator leaves it alone rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import lexicon as lx


@dataclass(frozen=True)
class Kind:
    name: str
    animacy: str  # "person", "animal", "object", "place", "body"
    size: int | None  # 0 tiny .. 3 large; None: any (abstract shapes)
    replaceable: bool  # whether members replace each other


# kind -> (animacy, size, replaceable, concepts). Concepts are the lexicon's first
# spellings, "_" for a space. A concept not listed has no kind: never swapped or replaced.
_KINDS: dict[str, tuple[str, int | None, bool, str]] = {
    # People. Person replacements follow PERSON_TRAITS (gender, age), not the kind.
    "person_adult": ("person", 2, False, "man woman teenager"),
    "person_child": ("person", 1, False, "boy girl child"),
    "person_baby": ("person", 0, False, "baby"),
    "family_parent": ("person", 2, True, "mother father"),
    "family_child": ("person", 1, True, "son daughter"),
    "family_spouse": ("person", 2, True, "husband wife"),
    "family_sibling": ("person", 1, True, "brother sister"),
    "person_generic": ("person", 2, False, "person people adult individual spectator friend family audience crowd team"),
    # What one does in a game says who one is ("the catcher catching"): not replaced.
    "role_baseball": ("person", 2, False, "batter catcher pitcher umpire"),
    "role_snow": ("person", 2, True, "skier snowboarder"),
    "role_wedding": ("person", 2, True, "bride groom"),
    "role_uniform": ("person", 2, True, "police_officer soldier fireman pilot doctor nurse"),
    "role_food": ("person", 2, True, "chef waiter vendor"),
    "role_other": ("person", 2, False, "player surfer skateboarder cyclist rider driver passenger student worker "
                                        "farmer tourist athlete tennis_player baseball_player soccer_player clown"),
    # Animals, by what they look like and where they are.
    "animal_pet": ("animal", 1, True, "dog cat"),
    "animal_small": ("animal", 1, True, "rabbit squirrel"),
    "animal_bird": ("animal", 1, True, "duck goose pigeon seagull chicken owl parrot swan crow chick"),
    "animal_farm_large": ("animal", 3, True, "horse cow donkey camel ox"),
    "animal_farm_small": ("animal", 2, True, "sheep goat pig"),
    "animal_wild": ("animal", 3, True, "elephant giraffe zebra deer"),
    "animal_predator": ("animal", 3, True, "bear lion tiger polar_bear"),
    "animal_other": ("animal", 1, False, "bird monkey fish turtle butterfly animal"),
    # Vehicles.
    "vehicle_road": ("object", 3, True, "car truck bus van taxi jeep suv fire_truck police_car ambulance limo "
                                        "double_decker_bus school_bus tractor"),
    "vehicle_two_wheels": ("object", 2, True, "motorcycle bicycle scooter motor_scooter"),
    "vehicle_rail": ("object", 3, True, "train trolley subway"),
    "vehicle_water": ("object", 3, True, "boat ship kayak canoe sailboat yacht"),
    "vehicle_air": ("object", 3, True, "airplane helicopter"),
    "vehicle_cart": ("object", 2, True, "cart wagon carriage trailer"),
    # A board goes with its ground ("riding a skateboard down the street"): not replaced.
    "vehicle_board": ("object", 1, False, "skateboard surfboard snowboard sled"),
    # Food and drink.
    "food_handheld": ("object", 1, True, "sandwich hot_dog hamburger taco burrito"),
    "food_dish": ("object", 1, True, "pizza salad soup pasta steak omelet sushi rice fries"),
    "food_baked": ("object", 1, True, "cake donut cookie pie muffin cupcake bagel croissant pancake waffle bread "
                                      "wedding_cake birthday_cake ice_cream chocolate toast bun"),
    "food_fruit": ("object", 1, True, "banana apple orange lemon lime strawberry grape pineapple watermelon pear "
                                      "peach avocado"),
    "food_vegetable": ("object", 1, True, "broccoli carrot tomato potato onion pepper cucumber mushroom corn lettuce "
                                          "spinach cauliflower zucchini celery olive bean pea"),
    "food_protein": ("object", 1, True, "egg cheese bacon ham sausage shrimp chicken_wing fish_fillet"),
    "food_breakfast": ("object", 1, True, "cereal yogurt"),
    "food_generic": ("object", 1, False, "doughnut_hole meat fruit vegetable berry dessert pastry sauce food meal lunch dinner "
                                         "breakfast snack"),
    "drink": ("object", 0, True, "coffee tea wine beer juice milk soda"),
    # Furniture.
    "furniture_seat": ("object", 2, True, "chair couch bench stool ottoman armchair recliner futon seat"),
    "furniture_table": ("object", 2, True, "table desk counter"),
    "furniture_small_table": ("object", 2, False, "coffee_table end_table nightstand"),
    "furniture_bed": ("object", 2, True, "bed crib"),
    "furniture_storage": ("object", 2, True, "shelf cabinet dresser rack vanity"),
    # Tableware.
    "tableware_drink": ("object", 0, True, "cup glass bottle jar jug wine_glass wine_bottle coffee_cup coffee_mug "
                                           "water_bottle"),
    "tableware_cook": ("object", 1, True, "pot pan kettle teapot skillet"),
    "tableware_bowl": ("object", 1, True, "bowl tupperware"),
    "tableware_flat": ("object", 1, True, "plate tray platter saucer paper_plate"),
    "tableware_utensil": ("object", 0, True, "fork knife spoon chopstick spatula"),
    "tableware_other": ("object", 0, False, "vase napkin lid straw container basket cutting_board"),
    # Appliances and electronics.
    "appliance_kitchen": ("object", 2, True, "oven refrigerator stove dishwasher"),
    "appliance_counter": ("object", 1, True, "microwave toaster blender mixer coffee_maker"),
    "appliance_toilet": ("object", 2, True, "toilet urinal"),
    "appliance_bath": ("object", 2, True, "bathtub shower"),
    "appliance_sink": ("object", 2, False, "sink"),
    "appliance_other": ("object", 1, True, "fan heater lamp"),
    "appliance_small": ("object", 0, False, "faucet hair_dryer washing_machine"),
    # One carries a laptop to a park bench, never a monitor.
    "electronics_screen": ("object", 1, True, "tv computer monitor"),
    "electronics_portable": ("object", 1, True, "laptop tablet"),
    "electronics_hand": ("object", 0, True, "cell_phone remote camera microphone telephone"),
    "electronics_input": ("object", 0, True, "keyboard mouse"),
    "electronics_audio": ("object", 0, True, "speaker radio headphone"),
    "electronics_other": ("object", 1, False, "printer video_game light_bulb"),
    # Household.
    "household_bedding": ("object", 1, True, "pillow blanket sheet"),
    "household_textile": ("object", 1, False, "towel curtain rug shower_curtain"),
    "household_reading": ("object", 0, True, "book magazine newspaper"),
    "household_toy": ("object", 1, True, "doll teddy_bear stuffed_animal"),
    "household_bag": ("object", 1, True, "suitcase backpack handbag briefcase"),
    "household_toiletry": ("object", 0, True, "toothbrush soap toothpaste"),
    "household_decor": ("object", 1, True, "painting picture_frame calendar clock"),
    # A mirror shows reflections: no other decoration stands in for it.
    "household_mirror": ("object", 1, False, "mirror"),
    "household_opening": ("object", 2, True, "window door"),
    "household_surface": ("object", 3, False, "wall floor"),
    "household_other": ("object", 1, False, "ceiling balloon sticker umbrella scissors candle candle_holder bucket broom trash_can box toy "
                                            "paper_towel toilet_paper staircase fireplace closet drawer cabinet_door "
                                            "outlet light_switch"),
    # Clothing.
    "clothing_head": ("object", 1, True, "hat helmet headband"),
    "clothing_top": ("object", 1, True, "jacket shirt sweater hoodie vest tank_top jersey"),
    "clothing_bottom": ("object", 1, True, "jeans pants shorts skirt"),
    "clothing_full": ("object", 1, True, "dress suit uniform wetsuit apron"),
    "clothing_neck": ("object", 1, True, "tie scarf bandana collar"),
    "clothing_eyes": ("object", 0, True, "sunglasses eyeglasses"),
    "clothing_feet": ("object", 1, True, "shoe boot sock"),
    "clothing_jewelry": ("object", 0, True, "watch bracelet ring earring necklace"),
    "clothing_other": ("object", 1, False, "glove costume bikini swimsuit wristband"),
    # Sports.
    "sports_ball": ("object", 0, True, "ball frisbee"),
    # Gear belongs to its sport ("a tennis player ... a hockey stick"): not replaced.
    "sports_stick": ("object", 1, False, "bat racket golf_club hockey_stick ski_pole"),
    "sports_other": ("object", 1, False, "kite baseball_glove ski skate net goal base home_plate"),
    # Street.
    "street_sign": ("object", 2, True, "sign stop_sign billboard flag"),
    # A traffic light shines and signals, which no sign does.
    "street_light": ("object", 2, False, "traffic_light"),
    "street_small": ("object", 2, True, "fire_hydrant parking_meter pole mailbox cone post"),
    "street_building": ("object", 3, True, "house church castle skyscraper barn lighthouse hotel hospital shop "
                                           "restaurant train_station tent tower"),
    "street_monument": ("object", 3, True, "statue fountain"),
    "street_barrier": ("object", 2, True, "fence gate"),
    "street_other": ("object", 3, False, "bridge umbrella_stand ramp tunnel curb bleachers dugout building roof chimney balcony porch doorway awning storefront track "
                                         "platform crosswalk bus_stop car_park power_line"),
    # Places: replaced only by a place of the same sort, never swapped.
    "room": ("place", None, True, "kitchen bathroom bedroom living_room office hallway garage dining_room "
                                  "basement attic lobby hotel_room"),
    # Places split by their preposition: one is "in a field" but "on a beach".
    "place_terrain_in": ("place", None, True, "field forest jungle valley countryside"),
    "place_terrain_on": ("place", None, True, "beach hill mountain cliff island"),
    "place_water": ("place", None, True, "ocean lake river pond pool"),
    # Vehicles go on roads, people on sidewalks and paths: not one kind.
    "place_urban_on": ("place", None, True, "street highway"),
    "place_walkway": ("place", None, True, "sidewalk path"),
    "place_urban_in": ("place", None, True, "city neighborhood village"),
    "place_spot_in": ("place", None, True, "parking_lot intersection alley plaza"),
    "place_venue_on": ("place", None, True, "court baseball_field"),
    "place_green": ("place", None, True, "park yard garden"),
    "place_animals": ("place", None, True, "zoo farm enclosure cage"),
    "place_transport": ("place", None, True, "airport airfield subway_station harbor"),
    "place_venue_in": ("place", None, False, "market stadium"),
    "place_other": ("place", None, False, "ice hay room sky body_of_water cloud desert water runway stage playground "
                                          "skate_park classroom library bakery studio"),
    "ground": ("place", None, True, "dirt grass snow sand mud gravel"),
    # Nature.
    "nature_tree": ("object", 3, True, "tree bush"),
    "nature_rock": ("object", 1, True, "rock log"),
    "nature_part": ("object", 0, True, "branch leaf stick"),
    "nature_other": ("object", 1, False, "flower plant wave waterfall"),
    # Body parts belong to someone: never swapped or replaced.
    "body": ("body", None, False, "thumb hand head mouth arm leg face hair eye foot tail nose trunk ear finger neck knee "
                                  "lap shoulder tooth beard paw wing horn mane tusk hoof"),
    # Abstract shapes come in any size: they swap with any object up to furniture size.
    "shape": ("object", None, True, "cube sphere cylinder pyramid block"),
    "shape_flat": ("object", None, False, "star diamond cross"),
}

KIND_OF: dict[str, Kind] = {
    concept.replace("_", " "): Kind(name, animacy, size, replaceable)
    for name, (animacy, size, replaceable, concepts) in _KINDS.items()
    for concept in concepts.split()
}

# Pairs (either order) where one word may name the same thing as the other: a hypernym
# and its hyponym, or near-synonyms. Neither replaces the other.
_OVERLAPPING = """
    car:taxi car:jeep car:suv car:police_car car:limo truck:fire_truck truck:ambulance van:ambulance
    bus:school_bus bus:double_decker_bus double_decker_bus:school_bus train:subway train:trolley
    scooter:motor_scooter boat:ship boat:kayak boat:canoe boat:sailboat boat:yacht sailboat:yacht ship:yacht
    kayak:canoe cart:wagon wagon:carriage
    cake:wedding_cake cake:birthday_cake cake:cupcake wedding_cake:birthday_cake donut:doughnut_hole
    bread:toast bread:bagel pie:cake cookie:muffin cupcake:muffin
    lemon:lime orange:peach
    chair:armchair chair:recliner chair:stool couch:futon couch:armchair bench:couch table:coffee_table
    table:end_table table:desk nightstand:end_table coffee_table:end_table bed:futon cabinet:dresser shelf:cabinet
    cup:coffee_cup cup:coffee_mug cup:glass coffee_cup:coffee_mug glass:wine_glass glass:jar bottle:wine_bottle
    bottle:water_bottle jar:jug kettle:teapot plate:paper_plate plate:saucer plate:platter tray:platter
    bowl:tupperware basket:tupperware
    oven:stove oven:microwave blender:mixer toilet:urinal bathtub:shower
    computer:laptop computer:monitor computer:tablet tv:monitor laptop:tablet monitor:tablet
    cell_phone:remote speaker:radio
    blanket:sheet curtain:shower_curtain towel:sheet rug:blanket
    doll:stuffed_animal teddy_bear:stuffed_animal
    painting:picture_frame mirror:picture_frame handbag:backpack
    handbag:suitcase hamburger:sandwich hot_dog:sandwich car:van car:truck
    hat:helmet hat:headband jacket:sweater jacket:hoodie jacket:vest shirt:jersey shirt:tank_top
    shirt:sweater sweater:hoodie vest:tank_top jeans:pants pants:shorts dress:skirt suit:uniform
    uniform:wetsuit tie:scarf scarf:bandana shoe:boot watch:bracelet
    sign:stop_sign sign:billboard pole:post parking_meter:post fence:gate
    house:barn house:hotel house:castle church:castle tower:skyscraper tower:lighthouse tower:church
    shop:restaurant shop:bakery hotel:hospital statue:fountain
    bedroom:hotel_room living_room:studio office:studio kitchen:bakery office:classroom office:library
    classroom:library hallway:lobby
    field:countryside field:farm hill:mountain hill:valley hill:cliff mountain:cliff mountain:valley
    forest:jungle lake:pond river:pond ocean:lake pool:pond
    street:highway street:alley street:intersection street:path street:neighborhood sidewalk:path
    alley:path city:village city:neighborhood village:neighborhood plaza:market highway:intersection
    park:yard park:garden park:playground yard:garden airport:runway airport:airfield runway:airfield
    zoo:enclosure zoo:cage zoo:farm enclosure:cage court:stadium baseball_field:stadium
    dirt:mud dirt:sand dirt:gravel water:ice snow:ice
    rock:log branch:leaf
    duck:goose goose:swan seagull:pigeon crow:pigeon
    horse:donkey cow:donkey sheep:goat bear:polar_bear
    batter:pitcher chef:waiter
    cube:block branch:stick cell_phone:telephone pan:skillet cart:trailer wagon:trailer grass:hay
    chair:seat couch:seat bench:seat stool:seat shelf:rack cabinet:vanity dresser:vanity
    handbag:briefcase backpack:briefcase suitcase:briefcase
"""
OVERLAPPING: frozenset[frozenset[str]] = frozenset(
    frozenset(w.replace("_", " ") for w in pair.split(":")) for pair in _OVERLAPPING.split()
)

# Person replacements: only to a person who differs for sure (other gender, or an adult
# for a child and back). "man" -> "boy" (a young man) and "girl" -> "child" are not.
PERSON_TRAITS = {
    "man": ("m", "adult"), "woman": ("f", "adult"), "boy": ("m", "child"), "girl": ("f", "child"),
    "child": (None, "child"), "baby": (None, "baby"),
}
_GENDER_OF_NOUN = {
    **{w: "m" for w in "man men guy guys gentleman gentlemen male boy boys groom policeman fireman firemen".split()},
    **{w: "f" for w in "woman women lady ladies female girl girls bride waitress waitresses".split()},
    **{w: "m" for w in "father dad daddy son husband brother".split()},
    **{w: "f" for w in "mother mom mommy daughter wife wives sister".split()},
}
MALE_PRONOUNS = frozenset("he him his himself".split())
FEMALE_PRONOUNS = frozenset("she her hers herself".split())


def kind_of(word: str) -> Kind | None:
    """The kind of a lexicon noun (any spelling), or None."""
    info = lx.NOUNS.get(word)
    return KIND_OF.get(info.concept) if info is not None else None


def gender_of(word: str) -> str | None:
    """"m"/"f" for a gendered person noun ("man", "ladies"), else None."""
    return _GENDER_OF_NOUN.get(word)


def overlapping(a: str, b: str) -> bool:
    """Whether two concepts may name the same thing (hypernym or near-synonym)."""
    return frozenset((a, b)) in OVERLAPPING


def object_replacement_fits(original: str, candidate: str) -> bool:
    """Whether lexicon noun concept ``candidate`` may replace ``original`` (concepts)."""
    if original in PERSON_TRAITS or candidate in PERSON_TRAITS:
        if original not in PERSON_TRAITS or candidate not in PERSON_TRAITS:
            return False
        (g1, age1), (g2, age2) = PERSON_TRAITS[original], PERSON_TRAITS[candidate]
        if age2 == "baby" or (age1 == "baby" and age2 == "child"):
            return False  # a baby is a child, and a baby boy a boy; and babies do little a man does
        if g1 is not None and g2 is not None and g1 != g2:
            return True
        return age1 != age2 and (g1 is None or g2 is None)
    kind = KIND_OF.get(original)
    return (
        kind is not None and kind.replaceable and KIND_OF.get(candidate) == kind
        and not overlapping(original, candidate)
    )


def family(kind: Kind) -> str:
    """"vehicle" for "vehicle_road": kinds of one family are alike in what they can be and do."""
    return kind.name.split("_")[0]


# What a room holds says which room it is: "a kitchen with a microwave oven" is no
# "hallway with a microwave oven". Kind names or concepts -> the rooms they belong in.
_ROOM_CONTENTS: dict[str, str] = {
    "appliance_kitchen": "kitchen", "toilet": "bathroom", "bathtub": "bathroom", "shower": "bathroom",
    "urinal": "bathroom", "sink": "kitchen bathroom", "household_toiletry": "bathroom", "towel": "bathroom",
    "shower_curtain": "bathroom", "toilet_paper": "bathroom", "counter": "kitchen bathroom",
    "furniture_bed": "bedroom hotel_room", "pillow": "bedroom hotel_room living_room",
    "blanket": "bedroom hotel_room living_room", "sheet": "bedroom hotel_room", "nightstand": "bedroom hotel_room",
    "dresser": "bedroom hotel_room", "couch": "living_room bedroom hotel_room basement lobby office",
    "armchair": "living_room bedroom hotel_room lobby office", "ottoman": "living_room bedroom hotel_room",
    "recliner": "living_room bedroom basement", "fireplace": "living_room bedroom hotel_room lobby",
    "tv": "living_room bedroom hotel_room basement kitchen office", "coffee_table": "living_room hotel_room lobby",
    "table": "kitchen dining_room living_room office hotel_room", "chair": "kitchen dining_room living_room office "
    "bedroom hotel_room", "desk": "office bedroom hotel_room living_room", "computer": "office bedroom living_room",
    "laptop": "office bedroom living_room hotel_room", "keyboard": "office bedroom", "monitor": "office bedroom",
    "printer": "office", "mouse": "office bedroom", "cabinet": "kitchen bathroom garage office",
    "vehicle": "garage", "food": "kitchen dining_room", "tableware": "kitchen dining_room",
}
ROOM_CONTENTS = {key: frozenset(r.replace("_", " ") for r in rooms.split()) for key, rooms in _ROOM_CONTENTS.items()}


def room_holds(room: str, noun: str) -> bool:
    """Whether lexicon noun ``noun`` belongs in room concept ``room`` (True when not known)."""
    info, kind = lx.NOUNS.get(noun), kind_of(noun)
    if info is None or kind is None:
        return True
    for key in (info.concept.replace(" ", "_"), kind.name, family(kind)):
        if key in ROOM_CONTENTS:
            return room in ROOM_CONTENTS[key]
    return True


# --------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------

_MANMADE_KINDS = (
    "vehicle", "furniture", "tableware", "appliance", "electronics", "household", "clothing", "sports", "street",
    "shape", "room",
)
BASIC_COLOURS = frozenset("white black red blue green yellow orange purple pink brown gray".split())
_COLOUR_FIT: dict[str, frozenset[str]] = {
    "animal_pet": frozenset("white black brown gray tan gold".split()),
    "animal_small": frozenset("white black brown gray".split()),
    "animal_bird": frozenset("white black brown gray red blue yellow green".split()),
    "animal_farm_large": frozenset("white black brown gray tan".split()),
    "animal_farm_small": frozenset("white black brown gray pink".split()),
    "nature_tree": frozenset("green yellow orange red brown".split()),
    "food_baked": frozenset("white brown yellow pink red green blue purple orange black".split()),
    "nature_part": frozenset("green yellow orange red brown".split()),
    "nature_rock": frozenset("gray brown black white red".split()),
    "food_fruit": frozenset("green yellow red orange brown purple".split()),
    "food_vegetable": frozenset("green red yellow orange purple white brown".split()),
}
# Colours of made things only (no animal, plant or food is "teal").
ARTIFICIAL_COLOURS = frozenset("red blue green yellow orange purple pink teal maroon navy silver".split())
_HAIR = frozenset({"hair", "beard", "mane"})
_HAIR_COLOURS = frozenset("blond black brown gray white red".split())
_CONCEPT_COLOURS = {
    "bird": _COLOUR_FIT["animal_bird"],
    "cat": frozenset("white black gray brown orange tan".split()),
    "flower": frozenset("white red yellow pink purple orange blue".split()),
    "sky": frozenset("blue gray orange pink".split()),
    "water": frozenset("blue green brown gray".split()),
    "ocean": frozenset("blue green gray".split()),
    "lake": frozenset("blue green gray".split()),
    "stop sign": frozenset({"red"}),
    # Produce has its own colours: a white tomato, a blue banana garble.
    "tomato": frozenset("red green yellow orange".split()), "banana": frozenset("yellow green brown".split()),
    "apple": frozenset("red green yellow".split()), "orange": frozenset("orange green".split()),
    "lemon": frozenset("yellow green".split()), "lime": frozenset("green".split()),
    "strawberry": frozenset("red".split()), "grape": frozenset("green purple red".split()),
    "broccoli": frozenset("green".split()), "carrot": frozenset("orange".split()),
    "court": frozenset("green blue red".split()),
    "field": frozenset("green brown yellow".split()),
}
_MATERIAL_FIT: dict[str, frozenset[str]] = {
    "furniture_seat": frozenset("wooden metal plastic wicker leather stone".split()),
    "furniture_table": frozenset("wooden metal glass plastic marble stone granite".split()),
    "furniture_bed": frozenset("wooden metal".split()),
    "furniture_storage": frozenset("wooden metal glass plastic".split()),
    "tableware_drink": frozenset("glass plastic metal ceramic paper".split()),
    "tableware_cook": frozenset("metal ceramic glass".split()),
    "tableware_flat": frozenset("glass plastic metal ceramic wooden paper bamboo".split()),
    "tableware_bowl": frozenset("glass plastic metal ceramic wooden".split()),
    "tableware_utensil": frozenset("metal plastic wooden".split()),
    "street_building": frozenset("brick stone concrete wooden metal glass".split()),
    "street_monument": frozenset("stone concrete metal marble wooden brick".split()),
    "street_barrier": frozenset("wooden metal brick stone concrete".split()),
    "street_small": frozenset("wooden metal plastic concrete".split()),
    "household_surface": frozenset("brick stone wooden tile concrete marble".split()),
    "household_opening": frozenset("wooden metal glass".split()),
    "household_bag": frozenset("leather paper plastic cloth".split()),
    "household_textile": frozenset("wool silk cloth leather".split()),
    "household_bedding": frozenset("wool silk cloth leather".split()),
    "clothing_top": frozenset("leather denim wool silk cloth".split()),
    "clothing_bottom": frozenset("leather denim wool silk cloth".split()),
    "clothing_full": frozenset("leather denim wool silk cloth".split()),
    "clothing_head": frozenset("straw wool leather plastic metal".split()),
    "clothing_feet": frozenset("leather rubber wool".split()),
    "appliance_bath": frozenset("ceramic metal marble".split()),
    "shape": frozenset("wooden metal glass plastic stone paper rubber".split()),
}
_PATTERN_KINDS = frozenset(
    {"household_textile", "household_bedding", "household_bag", "furniture_seat", "tableware_flat", "tableware_bowl", "tableware_drink"}
    | {k for k in _KINDS if k.startswith("clothing")}
)
_SHAPE_KINDS = frozenset({"furniture_table", "tableware_flat", "tableware_bowl", "household_decor", "household_opening",
                          "household_textile", "household_bedding", "street_sign", "food_dish", "food_baked", "shape"})
_TERRAIN_KINDS = frozenset({"place_terrain_in", "place_terrain_on", "place_urban_on", "place_urban_in",
                            "place_spot_in", "place_venue_on", "place_venue_in", "place_green", "place_animals",
                            "place_transport", "ground"})
_TERRAIN_FRAMES = frozenset({"area", "surface"})
_WEATHER_KINDS = _TERRAIN_KINDS - {"ground"} | {"place_water"}
_WEATHER_FRAMES = frozenset({"day", "afternoon", "morning", "evening", "night", "weather", "daytime", "sky"})
# Modifiers of a colour ("light blue", "dark brown"): replacing them changes a shade word.
SHADE_WORDS = frozenset({"light", "dark", "bright", "pale", "deep"})


def attribute_fits(group: str, word: str, noun: str | None) -> bool:
    """Whether attribute ``word`` (of attribute ``group``) can describe lexicon noun ``noun``.

    ``noun`` is the head the attribute modifies (None: unknown word or no head); an
    unknown head fits no colour, material, pattern or shape.
    """
    info = lx.NOUNS.get(noun) if noun else None
    if info is None:
        return False
    concept, kind = info.concept, kind_of(noun)
    if group == "color":
        if concept in _CONCEPT_COLOURS:
            return word in _CONCEPT_COLOURS[concept]
        if concept in _HAIR:
            return word in _HAIR_COLOURS
        if kind is None:
            return False
        if kind.name in _COLOUR_FIT:
            return word in _COLOUR_FIT[kind.name]
        return kind.name.startswith(_MANMADE_KINDS) and word != "blond"
    if group in ("terrain", "weather") and kind is None:
        return concept in (_TERRAIN_FRAMES if group == "terrain" else _WEATHER_FRAMES)
    if kind is None:
        return False
    if group == "material":
        return word in _MATERIAL_FIT.get(kind.name, ())
    if group == "pattern":
        return kind.name in _PATTERN_KINDS
    if group == "shape":
        return kind.name in _SHAPE_KINDS
    if group == "terrain":
        return kind.name in _TERRAIN_KINDS
    if group == "weather":
        return kind.name in _WEATHER_KINDS or concept == "sky"
    return False


# --------------------------------------------------------------------------------------
# Verbs
# --------------------------------------------------------------------------------------

# Who can do it: p(erson), a(nimal), b(ird), h(erbivore), o(bject), v(ehicle), w(ater craft).
# A verb concept not listed is never a replacement.
VERB_SUBJECTS: dict[str, str] = {
    # posture
    "sit": "pa", "stand": "pa", "lie": "pa", "kneel": "p", "crouch": "p", "rest": "pa", "sleep": "pa",
    "pose": "p", "perch": "b",
    # motion
    "walk": "pa", "run": "pa", "jump": "pa", "fly": "bv", "swim": "pa", "ski": "p", "surf": "p", "skate": "p",
    "snowboard": "p", "climb": "pa", "dive": "p", "graze": "h", "drive": "pv", "ride": "p", "race": "pav",
    "travel": "pv", "dance": "p", "wade": "pa",
    # handling
    "hold": "pa", "carry": "pa", "throw": "p", "catch": "pa", "kick": "p", "hit": "p", "push": "p", "pull": "pa",
    "grab": "pa", "lift": "p", "swing": "p", "drop": "p", "cut": "p", "open": "p", "close": "p", "touch": "p",
    "wash": "p", "brush": "p", "fix": "p", "paint": "p", "fill": "p", "pour": "p", "pet": "p", "hug": "p",
    "feed": "p", "chase": "pa", "use": "p", "read": "p", "sell": "p", "serve": "p", "cook": "p", "wear": "p",
    "kiss": "p", "photograph": "p", "eat": "pa", "drink": "pa", "bite": "pa", "lick": "pa", "smell": "pa",
    "sniff": "pa", "watch": "pa",
    # with "at"
    "look": "pa", "point": "p", "smile": "p", "laugh": "p", "wave": "p", "yell": "p",
}
# Animals people ride; anything else "ridden" is a vehicle.
RIDEABLE_ANIMALS = frozenset({"horse", "donkey", "camel", "elephant", "ox"})
# Body parts that belong to some animals only: "a zebra with a broken tusk" garbles.
ANIMAL_PARTS = frozenset({"tusk", "trunk", "mane", "horn", "hoof", "wing", "paw", "beak", "feather", "fur"})

# Verbs that take "at" and replace each other ("looking at" -> "pointing at").
AT_VERBS = frozenset("look point smile laugh wave yell".split())

# A thing "sitting" on a table is no more or less there "standing" or "lying": posture verbs
# say something only of people and animals, and an unknown subject may be a thing.
_ANY_SUBJECT_VERBS: frozenset[str] = frozenset()

# Motion verbs move over a kind of ground: "skiing down a mountain" -> "snowboarding",
# never "swimming". A replacement stays in its family.
MOTION_FAMILIES = [
    frozenset("walk run jump dance graze".split()),
    frozenset("swim dive wade".split()),
    frozenset("ski snowboard".split()),
    frozenset("drive ride race travel".split()),
    frozenset("fly".split()),
]
POSTURE_VERBS = frozenset("sit stand lie kneel crouch rest sleep pose perch hang float hide huddle gather".split())

# Verbs whose object must be of these kinds (prefixes of kind names). Verbs not listed
# take any concrete object.
_SMALL_OBJECTS = ("tableware", "food", "drink", "electronics_hand", "electronics_input", "electronics_audio",
                  "household_reading", "household_toy", "household_bag", "household_toiletry", "household_decor",
                  "sports_ball", "sports_stick", "clothing", "animal_pet", "animal_small", "shape", "=kite", "=umbrella")
VERB_OBJECTS: dict[str, tuple[str, ...]] = {
    "hold": _SMALL_OBJECTS, "carry": _SMALL_OBJECTS + ("vehicle_board",), "grab": _SMALL_OBJECTS,
    "lift": _SMALL_OBJECTS, "drop": _SMALL_OBJECTS, "touch": _SMALL_OBJECTS + ("animal",),
    "throw": ("sports_ball",), "catch": ("sports_ball",), "kick": ("=ball",), "hit": ("=ball",),
    "swing": ("sports_stick",), "push": ("vehicle_cart", "vehicle_two_wheels", "household_bag"),
    "pull": ("vehicle_cart", "household_bag"), "cut": ("food_dish", "food_handheld", "food_baked", "food_fruit", "food_vegetable"),
    "cook": ("food_dish", "food_handheld", "food_baked", "food_protein"), "eat": ("food",), "bite": ("food",), "lick": ("food",),
    "drink": ("drink",), "pour": ("drink",), "fill": ("tableware_drink", "tableware_bowl", "tableware_cook"),
    "wash": ("tableware", "vehicle_road", "vehicle_two_wheels", "animal_pet"), "brush": ("animal_pet", "animal_farm"),
    "fix": ("vehicle", "electronics", "appliance"), "paint": ("household_surface", "household_opening", "furniture",
                                                                "street_building", "street_barrier"),
    "pet": ("animal",), "feed": ("animal",), "hug": ("animal_pet", "person", "family", "household_toy"),
    "kiss": ("animal_pet", "person", "family"), "chase": ("animal", "sports_ball"),
    "open": ("household_opening", "household_bag", "electronics_screen", "appliance_kitchen", "household_reading"),
    "close": ("household_opening", "household_bag", "electronics_screen", "appliance_kitchen", "household_reading"),
    "use": ("electronics",), "read": ("household_reading",), "sell": ("food", "drink"), "serve": ("food", "drink"),
    "wear": ("clothing",), "smell": ("food", "drink"), "sniff": ("food", "animal"),
    "photograph": ("animal", "person", "street", "vehicle", "food"), "watch": ("electronics_screen", "animal", "person"),
}
# Verbs that nearly entail each other: one is no negative for the other.
_VERB_CLUSTERS = [
    "hold carry grab lift use", "eat bite lick", "hit swing kick", "wash brush", "touch pet hold hug",
    "smell sniff", "sell serve", "catch grab hold", "watch photograph", "sit rest", "lie rest sleep",
    "stand pose", "crouch kneel sit", "drive ride travel", "ride race", "run race", "swim dive wade",
    "hug kiss", "smile laugh", "yell laugh", "jump climb", "stand rest", "stand crouch",
]
VERB_CLUSTERS = [frozenset(c.split()) for c in _VERB_CLUSTERS]


def _kind_name(noun: str | None) -> str | None:
    kind = kind_of(noun) if noun else None
    return kind.name if kind is not None else None


def subject_code(noun: str | None) -> str | None:
    """One letter for the verb tables (person, animal, object...), or None if unknown."""
    name = _kind_name(noun)
    if name is None:
        return None
    if name.startswith(("person", "role", "family")):
        return "p"
    if name.startswith("animal"):
        if name == "animal_bird":
            return "b"
        return "h" if name in ("animal_farm_large", "animal_farm_small", "animal_wild") else "a"
    if name in ("vehicle_water",):
        return "w"
    if name.startswith("vehicle") and name != "vehicle_board":
        return "v"
    return "o"


def verb_fits_subject(verb: str, subject: str | None) -> bool:
    """Whether verb concept ``verb`` fits a subject noun (``None``: unknown -> no)."""
    code = subject_code(subject)
    allowed = VERB_SUBJECTS.get(verb)
    if allowed is None:
        return False
    if code is None:  # an unknown subject: only what people, animals and things all do
        return verb in _ANY_SUBJECT_VERBS
    if code in allowed:
        return True
    # Birds and herbivores are animals; boats are objects that float; vehicles are objects.
    return (code in "bh" and "a" in allowed) or (code == "w" and ("o" in allowed or "v" in allowed)) or (
        code == "v" and "o" in allowed and verb in POSTURE_VERBS)


def verb_fits_object(verb: str, noun: str | None) -> bool:
    """Whether verb concept ``verb`` takes lexicon noun ``noun`` as its object."""
    wanted = VERB_OBJECTS.get(verb)
    name = _kind_name(noun)
    if name is None:
        return False
    if wanted is None:
        return True
    concept = "=" + lx.NOUNS[noun].concept  # "=ball": that concept only ("hit a ball", never "a frisbee")
    return name.startswith(wanted) or concept in wanted


def verbs_overlap(a: str, b: str) -> bool:
    """Whether two verb concepts nearly entail each other (or share a motion family's ground)."""
    return any(a in c and b in c for c in VERB_CLUSTERS)


def same_motion_family(a: str, b: str) -> bool:
    return any(a in f and b in f for f in MOTION_FAMILIES)


# --------------------------------------------------------------------------------------
# Spatial relations
# --------------------------------------------------------------------------------------

_BESIDE = frozenset({"next", "behind", "front", "left", "right"})
_RELATION_LANDMARKS: dict[str, tuple[str, ...]] = {
    # target relation concept -> landmark kinds (prefixes) it makes sense with
    "on": ("furniture", "tableware_flat", "appliance", "vehicle_road", "vehicle_rail",
           "vehicle_water", "vehicle_cart", "household_textile", "household_reading", "household_bag",
           "nature_rock", "street_small", "shape", "animal_farm_large"),
    "under": ("furniture_table", "furniture_bed", "furniture_seat", "nature_tree", "vehicle_road", "vehicle_rail",
              "street_monument", "household_textile"),
    "above": ("furniture", "appliance", "electronics_screen", "household_opening", "household_decor",
              "street_sign", "street_building", "shape"),
    "in": ("vehicle_road", "vehicle_rail", "vehicle_water",
           "vehicle_air", "vehicle_cart", "furniture_storage", "appliance_kitchen", "appliance_bath",
           "household_bag"),
    "across": ("street_building", "person", "role", "family", "vehicle_road"),
    "outside": ("street_building", "vehicle_road", "vehicle_rail", "vehicle_air"),
}
# Not clothing ("a man in a tie"): one is in it, wherever one is. Boards and sports gear
# only where no activity says one is on them ("people on skis skiing"): see relation_fits.
_BESIDE_LANDMARKS = ("furniture", "tableware", "appliance", "electronics", "household_reading", "household_toy",
                     "household_bag", "household_toiletry", "household_decor", "household_opening",
                     "household_other", "vehicle", "street_sign", "street_small", "street_building",
                     "street_monument", "street_barrier", "nature_tree", "nature_rock", "person", "role", "family",
                     "animal", "shape", "food", "sports")
GEAR_KINDS = ("vehicle_board", "sports")
# Relations whose landmarks the tables above judge.
JUDGED_RELATIONS = frozenset(_BESIDE | set(_RELATION_LANDMARKS))


def relation_fits(concept: str, landmark: str | None) -> bool:
    """Whether spatial relation ``concept`` (a key of lexicon.SPATIAL_RELATIONS) makes sense
    with lexicon noun ``landmark`` as its object ("under a table": yes; "under the beach": no)."""
    name = _kind_name(landmark)
    if name is None:
        return False
    if name.startswith("shape"):
        return concept in _BESIDE or concept in _RELATION_LANDMARKS  # abstract shapes take any place
    if concept in _BESIDE:
        return name.startswith(_BESIDE_LANDMARKS)
    return name.startswith(_RELATION_LANDMARKS.get(concept, ("-",)))
